"""Schemas of every client frame (docs/protocol.md §4.1): extra fields are refused,
types are strict, binary values are base64."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from cryptokit.membership import Statement
from securechat.jsonapi import B64Bytes

RequestId = Annotated[str, Field(min_length=1, max_length=64)]
Username = Annotated[str, Field(min_length=1, max_length=150)]
# Every integer is a JSON number a JavaScript client holds exactly: [0, 2**53 - 1].
MAX_SAFE_INTEGER = 2**53 - 1
Order = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
U64 = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
EpochNumber = Annotated[int, Field(ge=1, lt=2**31)]
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
ConversationId = Annotated[str, Field(pattern=UUID_PATTERN)]
Serial = Annotated[str, Field(min_length=1, max_length=40, pattern="^[0-9a-f]+$")]


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: RequestId


class Ping(Frame):
    type: Literal["ping"]


class UsersSearch(Frame):
    type: Literal["users.search"]
    query: Annotated[str, Field(max_length=150)] = ""
    online_only: bool = True
    page: Annotated[int, Field(ge=1, le=1000)] = 1


class ConversationCreate(Frame):
    type: Literal["conversation.create"]
    usernames: Annotated[list[Username], Field(min_length=1, max_length=50)]
    title: Annotated[str, Field(max_length=120)] = ""
    key_origin: Literal["server", "members"] = "server"


class ConversationList(Frame):
    type: Literal["conversation.list"]
    page: Annotated[int, Field(ge=1, le=10_000)] = 1


class ConversationHistory(Frame):
    type: Literal["conversation.history"]
    conversation: ConversationId
    since: Order | None = None
    before: Order | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class StatementFrame(BaseModel):
    """A member-signed membership statement (members mode), cryptokit.membership."""

    model_config = ConfigDict(extra="forbid", strict=True)
    action: Literal["add", "leave", "remove"]
    subject: Username
    actor: Username
    actor_serial: Serial
    roster_epoch: EpochNumber
    nonce: Annotated[B64Bytes, Field(min_length=16, max_length=64)]
    signature: Annotated[B64Bytes, Field(min_length=1, max_length=1024)]
    subject_signing_sha256: Annotated[B64Bytes, Field(max_length=32)]
    subject_encryption_sha256: Annotated[B64Bytes, Field(max_length=32)]

    def to_statement(self) -> Statement:
        return Statement(**self.model_dump())


class ConversationLeave(Frame):
    type: Literal["conversation.leave"]
    conversation: ConversationId
    statement: StatementFrame | None = None


class ConversationAccept(Frame):
    """Accept a message request (membership put in by someone not a mutual contact)."""

    type: Literal["conversation.accept"]
    conversation: ConversationId


class UserBlock(Frame):
    type: Literal["user.block", "user.unblock"]
    username: Username


class MemberRemove(Frame):
    type: Literal["member.remove"]
    conversation: ConversationId
    username: Username
    statement: StatementFrame | None = None


class InviteSend(Frame):
    type: Literal["invite.send"]
    conversation: ConversationId
    username: Username
    statement: StatementFrame | None = None


class InviteAnswer(Frame):
    type: Literal["invite.accept", "invite.decline", "invite.cancel"]
    invitation: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]


class EpochGet(Frame):
    type: Literal["epoch.get"]
    conversation: ConversationId
    epochs: Annotated[list[EpochNumber], Field(min_length=1, max_length=50)]


class EpochReport(Frame):
    type: Literal["epoch.report"]
    conversation: ConversationId
    epoch: EpochNumber


class MemberKey(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    username: Username
    serial: Serial
    wrapped_key: B64Bytes


class EpochSubmit(Frame):
    type: Literal["epoch.submit"]
    conversation: ConversationId
    epoch: EpochNumber
    signer_serial: Serial
    signature: B64Bytes
    members: Annotated[list[MemberKey], Field(min_length=1, max_length=1000)]


class MessageSend(Frame):
    type: Literal["message.send"]
    conversation: ConversationId
    client_id: Annotated[str, Field(pattern=UUID_PATTERN)]
    epoch: EpochNumber
    sequence: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
    timestamp_ms: U64
    sender_serial: Serial
    device: Annotated[str, Field(pattern="^[0-9a-f]{32}$")]
    iv: B64Bytes
    ciphertext: B64Bytes
    signature: B64Bytes


class DeliveryAck(Frame):
    type: Literal["delivery.ack"]
    conversation: ConversationId
    up_to: Order


class Typing(Frame):
    type: Literal["typing"]
    conversation: ConversationId


REQUESTS = (
    Ping,
    UsersSearch,
    ConversationCreate,
    ConversationList,
    ConversationHistory,
    ConversationLeave,
    ConversationAccept,
    UserBlock,
    MemberRemove,
    InviteSend,
    InviteAnswer,
    EpochGet,
    EpochReport,
    EpochSubmit,
    MessageSend,
    DeliveryAck,
    Typing,
)
REQUEST_TYPES = {
    literal for model in REQUESTS for literal in model.model_fields["type"].annotation.__args__
}
Request = Annotated[
    Ping
    | UsersSearch
    | ConversationCreate
    | ConversationList
    | ConversationHistory
    | ConversationLeave
    | ConversationAccept
    | UserBlock
    | MemberRemove
    | InviteSend
    | InviteAnswer
    | EpochGet
    | EpochReport
    | EpochSubmit
    | MessageSend
    | DeliveryAck
    | Typing,
    Field(discriminator="type"),
]
request_adapter: TypeAdapter[Request] = TypeAdapter(Request)
