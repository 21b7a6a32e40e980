"""ChatClient: log in, certify keys, chat. It verifies everything the server relays:
certificates against the CA, key records, message signatures, replays."""

import asyncio
import datetime as dt
import hashlib
import secrets
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric import dsa

from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from cryptokit.fingerprints import fingerprint
from cryptokit.keys import spki_der
from cryptokit.membership import MembershipError, Statement, key_hashes
from cryptokit.pop import answer_challenge

from .conversation import ConversationState, DecryptedMessage, b64, unb64
from .errors import KeyChanged, KeyStoreError, NoMessage, ProtocolError, TrustError
from .http import HttpSession
from .keystore import (
    KeyPair,
    generate_key_pair,
    has_keys,
    load_private_keys,
    save_private_keys,
    save_serials,
)
from .live import LiveSocket, backoff
from .renewal import renew_if_due
from .trust import TrustStore, public_spki

# Trust failures of a members-mode record that the server can repair by asking another
# member for a new key (protocol.md §5.4); anything else is refused and only reported.
REPORTABLE = {"key_does_not_open", "bad_distribution"}
# Refusals a send may be retried after, with the same client_id.
RETRYABLE_CODES = {"closed", "internal_error", "unavailable", "rate_limited"}

SERVER_NAME = "SecureChat server"
# receive_text asks the database after this long without a message: a lost live event of
# the newest message shows no gap until the next message (protocol.md §7).
IDLE_CATCH_UP_SECONDS = 5.0


class ChatClient:
    def __init__(
        self,
        base_url: str,
        *,
        keys_dir: Path | str | None = None,
        key_passphrase: str | bytes | None = None,
        pins_path: Path | None = None,
        signing_algorithm: str = "ed25519",
        replace_keys: bool = False,
        other_urls: list[str] = (),
    ):
        """`keys_dir`: this device's keys, certificate serials and pins live in
        keys_dir/<username>/ and `login` loads them (or makes, certifies and saves them
        the first time); private keys are encrypted under `key_passphrase` when one is
        given, else written in plaintext (mode 0600). `replace_keys`: make new keys even
        though the server has certified ones this directory does not hold (contacts then
        see `key_changed` until they accept the new keys)."""
        self.base_url = base_url.rstrip("/")
        # Other workers of the same server, tried in turn when reconnecting.
        self.urls = [self.base_url, *(url.rstrip("/") for url in other_urls)]
        self.http = HttpSession(self.base_url, list(other_urls))
        self.keys_dir = Path(keys_dir) if keys_dir else None
        self.pins_path = pins_path
        self.key_passphrase = key_passphrase
        self.signing_algorithm, self.replace_keys = signing_algorithm, replace_keys
        self.username = ""
        self.keys: KeyPair | None = None
        self.trust: TrustStore | None = None
        self.authority: dict = {}
        self.live: LiveSocket | None = None
        self.queued: dict[str, set[int]] = {}  # orders of message.new put in the inbox
        self.conversations: dict[str, ConversationState] = {}
        self.details: dict[str, dict] = {}  # conversation objects as last listed or created
        self.inbox: list[dict] = []
        self.changed = asyncio.Condition()
        self.problems: list[Exception] = []  # refused records and failures, for the user to see
        self.pump: asyncio.Task | None = None
        self.intended: dict[str, frozenset[str]] = {}  # members I asked for at creation
        # This client session is one sending device: its own sequence numbers (protocol §3.4).
        self.device = secrets.token_hex(16)
        self.held_requests: dict[str, dict] = {}  # key requests waiting on a key change

    # --- HTTP: login, trust, keys -------------------------------------------------

    async def login(self, username: str, password: str) -> None:
        """Session login. With a `keys_dir`, also `load_trust()` and this user's keys: the
        saved ones with their certificate serials, else new ones, certified and saved."""
        await self.http.login(username, password)
        self.username = username
        if self.keys_dir is not None:
            await self.load_trust()
            await self._load_or_register_keys()

    @property
    def user_dir(self) -> Path | None:
        """keys_dir/<username>/: private keys, certificate serials, pins."""
        return self.keys_dir / self.username if self.keys_dir and self.username else None

    async def load_trust(self) -> None:
        self.authority = await self.http.get_json("/api/keys/ca/")
        pins = self.pins_path or (self.user_dir / "pins.json" if self.user_dir else None)
        self.trust = TrustStore.from_authority(self.authority, pins_path=pins)
        await self.trust.refresh_revocations(self.http)

    async def _load_or_register_keys(self) -> None:
        """The keys saved here; new ones only when there are none here and the server has
        none for me either (or `replace_keys`): silently making new keys where old ones
        are certified would be a key change every contact refuses."""
        if has_keys(self.user_dir):
            self.use_keys(load_private_keys(self.user_dir, self.key_passphrase))
            return
        published = await self.http.get_json(f"/api/keys/users/{quote(self.username)}/")
        if "signing" in published and not self.replace_keys:
            certificate = self.trust.verify_certificate(
                unb64(published["signing"]["certificate"]), username=self.username, kind="signing"
            )
            raise KeyStoreError(
                f"{self.username} already has a certified signing key "
                f"({fingerprint(public_spki(certificate))}) that is not in {self.user_dir}: "
                "use the key directory that holds it, or replace_keys=True for new keys "
                "(your contacts will refuse them as key_changed until they compare safety "
                "numbers and accept them)."
            )
        await self.register_keys(self.signing_algorithm)

    async def register_keys(self, signing_algorithm: str = "ed25519", rsa_bits: int = 3072) -> dict:
        """Make a key pair here, prove possession, get both keys certified."""
        parameters = None
        if signing_algorithm == "dsa":
            p, q, g = (int(self.authority["dsa_parameters"][k], 16) for k in "pqg")
            parameters = dsa.DSAParameterNumbers(p, q, g).parameters()
        keys = generate_key_pair(signing_algorithm, dsa_parameters=parameters, rsa_bits=rsa_bits)
        if self.user_dir:  # saved before they are certified: never certified and lost
            save_private_keys(self.user_dir, keys, self.key_passphrase)
        return await self.certify(keys)

    async def certify(self, keys: KeyPair) -> dict:
        signing_spki = spki_der(keys.signing_key.public_key())
        encryption_spki = spki_der(keys.encryption_key.public_key())
        body = {"signing_key": b64(signing_spki), "encryption_key": b64(encryption_spki)}
        challenge = await self.http.post_json("/api/keys/challenge/", body)
        signature, secret = answer_challenge(
            username=self.username,
            nonce=unb64(challenge["nonce"]),
            encrypted_secret=unb64(challenge["encrypted_secret"]),
            signing_key=keys.signing_key,
            encryption_key=keys.encryption_key,
        )
        issued = await self.http.post_json(
            "/api/keys/register/",
            {
                **body,
                "challenge_id": challenge["challenge_id"],
                "signature": b64(signature),
                "secret": b64(secret),
            },
        )
        for kind in ("signing", "encryption"):
            self.trust.verify_certificate(
                unb64(issued[kind]["certificate"]), username=self.username, kind=kind
            )
        keys.signing_serial = issued["signing"]["serial"]
        keys.encryption_serial = issued["encryption"]["serial"]
        self.use_keys(keys)
        if self.user_dir:
            save_serials(self.user_dir, keys)
        return issued

    def use_keys(self, keys: KeyPair) -> None:
        self.keys = keys
        self._pin_own_keys()

    def _pin_own_keys(self) -> None:
        """My own keys are the pins for my name: a certificate the server's CA issues under
        my name for another key is refused like anyone else's changed key."""
        if self.trust is not None and self.keys is not None:
            self.trust.pins[self.username] = {
                "signing": fingerprint(spki_der(self.keys.signing_key.public_key())),
                "encryption": fingerprint(spki_der(self.keys.encryption_key.public_key())),
            }

    # --- the socket and its events ------------------------------------------------

    async def connect(self) -> None:
        self._pin_own_keys()
        if self.keys is not None:
            try:
                await renew_if_due(self)  # certificates renew before they expire
            except ProtocolError as refused:  # e.g. key_revoked: shown, the socket still opens
                self.problems.append(refused)
        self.live = LiveSocket(self.urls, self.http.cookie_header())
        await self.live.open()
        self.pump = asyncio.create_task(self._pump())
        await self._refresh_conversations()

    @property
    def connection(self):
        """The current WebSocket (a new one after each reconnect)."""
        return self.live.connection if self.live else None

    @property
    def connection_state(self) -> str:
        return self.live.state if self.live else "offline"

    async def close(self) -> None:
        if self.pump:
            self.pump.cancel()
        if self.live:
            await self.live.close()
        await self.http.close()

    async def request(self, type_: str, **fields) -> dict:
        """A protocol request; waits for the socket while it reconnects."""
        return await self.live.request(type_, **fields)

    async def _refresh_conversations(self) -> None:
        page, more = 1, True
        while more:  # paged when the server says there is more (`page` only from 2 on)
            listed = await self.request("conversation.list", **({"page": page} if page > 1 else {}))
            for conversation in listed["conversations"]:
                try:
                    self._track(conversation)
                except TrustError as problem:  # e.g. origin_changed: shown, never applied
                    problem.conversation = conversation["id"]
                    await self._problem(problem)
            more, page = bool(listed.get("has_more")), page + 1

    async def resync(self, reason: str = "") -> None:
        """After a reconnect or a `resync` from the server: what changed meanwhile, and
        every message since the last one this client has, from the database."""
        await self._refresh_conversations()
        for conversation_id in list(self.conversations):
            await self._fetch_since(conversation_id, max(self.queued.get(conversation_id, {0})))

    async def _fetch_since(self, conversation_id: str, since: int) -> None:
        """Queue the stored messages after `since`, oldest first (duplicates dropped)."""
        while True:
            try:
                reply = await self.request(
                    "conversation.history", conversation=conversation_id, since=since, limit=200
                )
            except ProtocolError as refused:
                if refused.code == "not_member":
                    return  # left or removed meanwhile
                raise
            for message in reply["messages"]:
                await self._queue({"type": "message.new", "id": None, "message": message})
                since = max(since, message["order"])
            if not reply["has_more"]:
                return

    async def _queue(self, event: dict) -> None:
        """Put an event in the inbox; a message.new only once per (conversation, order)."""
        if event["type"] == "message.new":
            message = event["message"]
            orders = self.queued.setdefault(message["conversation"], set())
            if message["order"] in orders:
                return
            orders.add(message["order"])
        async with self.changed:
            self.inbox.append(event)
            self.changed.notify_all()

    def _track(self, conversation: dict) -> ConversationState:
        state = self.conversations.setdefault(
            conversation["id"], ConversationState(conversation["id"])
        )
        state.fix_key_origin(conversation["key_origin"])  # refuses a changed origin
        state.created_by = state.created_by or conversation["created_by"]
        self.details[conversation["id"]] = conversation
        return state

    async def _pump(self) -> None:
        """Handle key events as they come, then queue every event for the user."""
        while True:
            try:
                event = await self.live.next_event()
            except ProtocolError:  # offline for good (closed by us, or refused)
                return
            try:
                await self._handle(event)
            except TrustError as problem:
                problem.conversation = problem.conversation or _conversation_of(event)
                await self._problem(problem)
            except ProtocolError:
                pass  # e.g. another member answered an epoch request first
            except Exception as failure:  # keep pumping: one bad event must not stop the client
                await self._problem(failure)
            await self._queue(event)

    async def _problem(self, problem: Exception) -> None:
        """Record a refusal for the user, and wake whoever waits (a key change ends the
        waits it concerns, see `_wait_until`)."""
        async with self.changed:
            self.problems.append(problem)
            self.changed.notify_all()

    async def _handle(self, event: dict) -> None:
        kind = event["type"]
        if kind == "resync" or (kind == "connection.state" and event["state"] == "connected"):
            await self.resync(event.get("reason", "reconnected"))
        elif kind == "message.new":
            await self._fill_gap(event["message"])
        elif kind == "conversation.created":
            self._track(event["details"])
            # My socket joined its group just before this event: a message stored before
            # that never reaches me live, so fetch what is stored already (no duplicates).
            await self._fetch_since(
                event["conversation"], max(self.queued.get(event["conversation"], {0}))
            )
        elif kind == "invite.received" and event["invitation"].get("statement"):
            await self._check_invitation(event["invitation"])
        elif kind == "epoch.new":
            await self._accept_epoch(event["epoch"])
        elif kind == "epoch.request":
            self.held_requests.pop(event["conversation"], None)
            try:
                await self._make_epoch(event)
            except TrustError as problem:
                if problem.code == "key_changed":  # made once the user accepts the new key
                    self.held_requests[event["conversation"]] = event
                raise

    async def _accept_epoch(self, record: dict, *, live: bool = True) -> None:
        """Verify a key record with every check (protocol.md §5) and keep my key from it;
        a members-mode record whose key does not reach me is reported, so the server asks
        another member for a new one."""
        state = self.conversations.setdefault(
            record["conversation"], ConversationState(record["conversation"])
        )
        try:
            await self._verify_and_accept(state, record)
        except TrustError as problem:
            if live and problem.code in REPORTABLE and state.key_origin == "members":
                await self._report(state, record["epoch"])
            raise

    async def _verify_and_accept(self, state: ConversationState, record: dict) -> None:
        at = _stored_at(record.get("created"))
        if record["key_origin"] == "members" and record["previous_epoch"]:
            await self._fill_chain(state, record["epoch"], record["previous_epoch"])
        if record["signer"] == "server":
            body, certificate = await self.trust.certificate(
                self.http, record["signer_serial"], username=SERVER_NAME, kind="signing", at=at
            )
            if body["kind"] != "server-signing":
                raise TrustError("bad_distribution", "Not signed by the server's key.")
            statements = []
        else:
            body, certificate = await self.trust.certificate(
                self.http, record["signer_serial"], username=record["signer"], kind="signing", at=at
            )
            if body["kind"] != "signing":
                raise TrustError("bad_distribution", "Not signed by a member's signing key.")
            self.trust.check_pin(record["signer"], "signing", public_spki(certificate))
            statements = await self._verified_statements(state.id, record.get("changes", []))
            await self._check_wrap_targets(record["members"], statements, at=at)
        state.accept_epoch(
            record,
            me=self.username,
            my_encryption_key=self.keys.encryption_key,
            signer_public_key=certificate.public_key(),
            signer_is_server=record["signer"] == "server",
            statements=statements,
        )

    async def _fill_chain(self, state: ConversationState, epoch: int, previous: int) -> None:
        """Fetch the records between the newest I verified and `epoch`, oldest first, so
        every record is checked against the one it follows."""
        newest = state.newest
        if newest is None or previous in state.epochs or epoch <= newest.number:
            return
        missing = [n for n in range(newest.number + 1, epoch) if n not in state.epochs][-50:]
        if missing:
            listed = await self.request("epoch.get", conversation=state.id, epochs=missing)
            for link in listed["epochs"]:
                if link["epoch"] not in state.epochs:
                    await self._verify_and_accept(state, link)

    async def _verified_statements(self, conversation_id: str, given: list[dict]) -> list:
        """Membership statements whose signer's certificate and pinned key check out."""
        statements = []
        for data in given:
            try:
                statement = Statement.from_json(data)
                data_bytes = statement.signed_bytes(conversation_id)
            except (MembershipError, ValueError):
                raise TrustError("bad_statement", "A membership statement is malformed.") from None
            body, certificate = await self.trust.certificate(
                self.http, statement.actor_serial, username=statement.actor, kind="signing"
            )
            if body["kind"] != "signing":
                raise TrustError("bad_statement", "Not signed with a signing key.")
            self.trust.check_pin(statement.actor, "signing", public_spki(certificate))
            try:
                signing.verify(certificate.public_key(), statement.signature, data_bytes)
            except CryptoError:
                raise TrustError("bad_statement", "A statement's signature fails.") from None
            statements.append(statement)
        return statements

    async def _check_wrap_targets(self, members: list[dict], statements: list, *, at=None) -> dict:
        """Each key of a members-mode record goes to the member's own certified encryption
        key: the key an addition names, else the key pinned for that member.
        Returns username -> the verified x509 certificate."""
        added = {s.subject: s for s in statements if s.action == "add"}
        verified = {}
        for member in members:
            if not member["serial"]:
                continue  # listed without a key: nothing is sent to them
            name = member["username"]
            body, certificate = await self.trust.certificate(
                self.http, member["serial"], username=name, kind="encryption", at=at
            )
            spki = public_spki(certificate)
            if body["kind"] != "encryption":
                raise TrustError("bad_distribution", f"{name}'s key is not an encryption key.")
            if name in added and hashlib.sha256(spki).digest() != (
                added[name].subject_encryption_sha256
            ):
                raise TrustError("bad_distribution", f"{name}'s key is not the one invited.")
            self.trust.check_pin(name, "encryption", spki)
            verified[name] = certificate
        return verified

    async def _fill_gap(self, message: dict) -> None:
        """A message whose order skips some: fetch the missing ones first (a live event
        was lost), so the inbox stays in order."""
        have = self.queued.get(message["conversation"])
        if have and message["order"] > max(have) + 1:
            await self._fetch_since(message["conversation"], max(have))

    async def _intended_members(self, state: ConversationState) -> frozenset[str] | None:
        """Epoch 1 of a conversation I created goes to the members I named; the request
        may overtake the reply that tells me the id, so wait for it briefly."""
        if state.created_by != self.username:
            return None

        async def named() -> frozenset[str]:
            async with self.changed:
                await self.changed.wait_for(lambda: state.id in self.intended)
                return self.intended[state.id]

        try:
            return await asyncio.wait_for(named(), 10)
        except TimeoutError:
            return None

    async def _check_invitation(self, invitation: dict) -> None:
        """Members origin: the invitation must carry the inviter's own signed addition of
        me, naming my keys; a forged one is reported (and should not be accepted)."""
        (statement,) = await self._verified_statements(
            invitation["conversation"], [invitation["statement"]]
        )
        mine = key_hashes(self.keys.signing_key.public_key(), self.keys.encryption_key.public_key())
        if (statement.action, statement.subject, statement.actor) != (
            "add",
            self.username,
            invitation["inviter"],
        ) or (statement.subject_signing_sha256, statement.subject_encryption_sha256) != mine:
            raise TrustError("bad_statement", "The invitation is not the inviter's addition of me.")

    async def accept_key_change(self, username: str) -> None:
        """The user compared safety numbers with `username` and accepts their current keys;
        a key request held back because of the change is made now."""
        body = await self.http.get_json(f"/api/keys/users/{username}/")
        for kind in ("signing", "encryption"):
            if kind in body:
                certificate = self.trust.verify_certificate(
                    unb64(body[kind]["certificate"]), username=username, kind=kind
                )
                self.trust.accept_key_change(username, public_spki(certificate), kind)
                self.trust.check_pin(username, kind, public_spki(certificate))
        for conversation_id, request in list(self.held_requests.items()):
            del self.held_requests[conversation_id]
            await self._make_epoch(request)

    async def _report(self, state: ConversationState, epoch: int) -> None:
        """Tell the server my key in the current epoch is unusable; it asks me for a new one."""
        try:
            await self.request("epoch.report", conversation=state.id, epoch=epoch)
        except ProtocolError as refused:
            self.problems.append(refused)

    async def _make_epoch(self, request: dict) -> None:
        """Members mode: make the next key here, for exactly the members the rule allows
        (the same check every receiver applies), wrap it for each member's pinned key."""
        state = self.conversations.setdefault(
            request["conversation"], ConversationState(request["conversation"])
        )
        state.fix_key_origin("members")
        epoch, previous = request["epoch"], request["previous_epoch"]
        if previous:
            await self._fill_chain(state, epoch, previous)
        statements = await self._verified_statements(state.id, request["changes"])
        expected, roster = state.expected_transition(
            epoch=epoch, previous=previous, signer=self.username, statements=statements
        )
        if previous == 0:
            expected = await self._intended_members(state)
        if expected is None or roster is None:
            raise TrustError("chain_gap", "I cannot check who may have this key.")
        listed = frozenset(m["username"] for m in request["members"])
        if listed != expected:
            extra, missing = sorted(listed - expected), sorted(expected - listed)
            raise TrustError(
                "members_mismatch",
                f"Asked to give a key to {extra or 'nobody more'} and not to "
                f"{missing or 'nobody'} without a member's signature.",
            )
        # Each wrap target is checked once, by serial: CA, profile, revocation and pin (the
        # same check receivers make); the certificate in the request is not needed for it.
        targets = await self._check_wrap_targets(request["members"], statements)
        key = wrapping.new_epoch_key()
        members = [
            (name, m["serial"], wrapping.oaep_encrypt(targets[name].public_key(), key))
            if m["serial"]
            else (name, "", b"")
            for m in request["members"]
            for name in [m["username"]]
        ]
        record = encoding.distribution_record(
            conversation_id=state.id,
            epoch=epoch,
            previous_epoch=previous,
            roster_epoch=roster,
            key_origin="members",
            signer=self.username,
            signer_serial=self.keys.signing_serial,
            members=members,
            changes=[s.signed_bytes(state.id) for s in statements],
        )
        await self.request(
            "epoch.submit",
            conversation=state.id,
            epoch=epoch,
            signer_serial=self.keys.signing_serial,
            signature=b64(signing.sign(self.keys.signing_key, record)),
            members=[{"username": u, "serial": s, "wrapped_key": b64(w)} for u, s, w in members],
        )

    def sign_statement(
        self, conversation_id: str, action: str, subject: str, key_hashes=(b"", b"")
    ) -> Statement:
        """A membership statement signed by me, against the roster I verified last."""
        return Statement.create(
            conversation_id,
            self.keys.signing_key,
            action=action,
            subject=subject,
            actor=self.username,
            actor_serial=self.keys.signing_serial,
            roster_epoch=self.state(conversation_id).roster_epoch,
            key_hashes=key_hashes,
        )

    async def checked_keys_of(self, username: str) -> tuple[bytes, bytes]:
        """SHA-256 of `username`'s signing and encryption SPKIs, certified by our CA and
        consistent with my pins (pinned now if first seen): what an invitation names."""
        body = await self.http.get_json(f"/api/keys/users/{username}/")
        hashes = []
        for kind in ("signing", "encryption"):
            if kind not in body:
                raise TrustError("no_active_keys", f"{username} has no {kind} key.")
            certificate = self.trust.verify_certificate(
                unb64(body[kind]["certificate"]), username=username, kind=kind
            )
            self.trust.check_not_revoked(f"{certificate.serial_number:x}")
            spki = public_spki(certificate)
            self.trust.check_pin(username, kind, spki)
            hashes.append(hashlib.sha256(spki).digest())
        return hashes[0], hashes[1]

    async def _wait_until(
        self, found, *, timeout: float | None, what: str, key_changes_in: str | None = None
    ):
        """`found()`'s first result other than None, re-checked whenever something
        arrives. A key change refused meanwhile in conversation `key_changes_in` ("*":
        any) ends the wait at once as that KeyChanged: what is awaited cannot come until
        the user accepts the key. Running out of time is NoMessage (a TimeoutError) naming
        what this client refused meanwhile."""
        before = {id(problem) for problem in self.problems}

        def refused() -> list[Exception]:
            return [problem for problem in self.problems if id(problem) not in before]

        def key_change() -> KeyChanged | None:
            for problem in refused():
                if isinstance(problem, KeyChanged) and key_changes_in in (
                    "*",
                    problem.conversation,
                ):
                    return problem
            return None

        async def wait():
            async with self.changed:
                while (result := found()) is None:
                    if key_changes_in and (change := key_change()):
                        raise change
                    await self.changed.wait()
                return result

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            meanwhile = "; ".join(str(problem) for problem in refused())
            raise NoMessage(
                f"No {what} within {timeout} s"
                + (f"; refused meanwhile: {meanwhile}" if meanwhile else "")
            ) from None

    async def next_event(
        self, type_: str | None = None, *, timeout: float = 10, predicate=None
    ) -> dict:
        """The next queued event of `type_` (others stay queued)."""

        def match():
            for index, event in enumerate(self.inbox):
                if (type_ is None or event["type"] == type_) and (
                    predicate is None or predicate(event)
                ):
                    return self.inbox.pop(index)
            return None

        return await self._wait_until(match, timeout=timeout, what=f"{type_ or 'event'}")

    async def wait_for_epoch(
        self, conversation_id: str, epoch: int | None = None, timeout: float = 10
    ) -> int:
        """Wait until this client holds a key of `epoch` or later (or of any epoch); the
        newest epoch it holds a key for. A key change it refuses in that conversation
        meanwhile is raised as KeyChanged."""

        def held():
            keys = self.conversations.get(conversation_id, ConversationState("")).epoch_keys
            return max(keys) if keys and max(keys) >= (epoch or 0) else None

        return await self._wait_until(
            held,
            timeout=timeout,
            what=f"key of epoch {epoch or 'any'} of conversation {conversation_id}",
            key_changes_in=conversation_id,
        )

    def state(self, conversation_id: str) -> ConversationState:
        return self.conversations[conversation_id]

    # --- conversations and messages -----------------------------------------------

    async def create_conversation(
        self, usernames: list[str], title: str = "", key_origin: str = "server"
    ) -> str:
        reply = await self.request(
            "conversation.create", usernames=usernames, title=title, key_origin=key_origin
        )
        conversation_id = reply["conversation"]
        # Remembered before the key request can arrive: epoch 1 goes to exactly these.
        async with self.changed:
            self.intended[conversation_id] = frozenset([self.username, *usernames])
            self.changed.notify_all()
        self._track(reply["details"])
        await self.wait_for_epoch(conversation_id, 1)
        return conversation_id

    async def direct_conversation(self, peer: str, *, timeout: float = 60) -> str:
        """The conversation of exactly me and `peer`, with its current key held: the one
        we share (both sides pick the same), else one `peer` starts (accepting their
        invitation if it comes as one), else a new one. So that two people starting at
        once do not make two, the one whose username sorts first makes it and the other
        waits for it up to `timeout`."""
        conversation_id = self._shared_with(peer)
        if conversation_id is None and self.username < peer:
            # A member without certified keys gets no key for the first epoch and could
            # never read what is sent in it: wait until the peer has keys (their first run
            # may be certifying them right now).
            await self._wait_for_keys_of(peer, timeout)
            conversation_id = await self.create_conversation([peer])
            if peer not in self._members(conversation_id):  # invited, not added: wait
                await self.next_event(
                    "member.joined",
                    timeout=timeout,
                    predicate=lambda e: (
                        (e["conversation"], e["username"]) == (conversation_id, peer)
                    ),
                )
                await self._refresh_conversations()
        elif conversation_id is None:
            found = await self._wait_until(
                lambda: self._shared_with(peer) or self._invitation_from(peer),
                timeout=timeout,
                what=f"conversation started by {peer} (is {peer} connected?)",
                key_changes_in="*",
            )
            conversation_id = (
                found if isinstance(found, str) else await self.accept_invitation(found)
            )
        await self._hold_current_key(conversation_id)
        return conversation_id

    async def _wait_for_keys_of(self, username: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                body = await self.http.get_json(f"/api/keys/users/{quote(username)}/")
                if "signing" in body and "encryption" in body:
                    return
            except ProtocolError as refused:
                if refused.code not in ("no_active_keys", "unknown_user"):
                    raise
            if loop.time() >= deadline:
                raise NoMessage(f"{username} has no certified keys after {timeout} s.")
            await asyncio.sleep(0.5)

    def _members(self, conversation_id: str) -> set[str]:
        return {member["username"] for member in self.details[conversation_id]["members"]}

    def _shared_with(self, peer: str) -> str | None:
        shared = [cid for cid in self.details if self._members(cid) == {self.username, peer}]
        return min(shared) if shared else None

    def _invitation_from(self, peer: str) -> int | None:
        """A pending invitation from `peer`, taken out of the inbox."""
        for index, event in enumerate(self.inbox):
            if event["type"] == "invite.received" and event["invitation"]["inviter"] == peer:
                return self.inbox.pop(index)["invitation"]["id"]
        return None

    async def _hold_current_key(self, conversation_id: str) -> None:
        """A process that starts afresh holds no key of a conversation it finds listed:
        fetch the current one (or wait for it while the members make it)."""
        listed = self.details[conversation_id]
        if listed["epoch_pending"] or not listed["epoch"]:  # being made (0: just created)
            await self.wait_for_epoch(conversation_id, listed["epoch"] + 1)
        elif listed["epoch"] not in self.state(conversation_id).epoch_keys:
            await self.fetch_epochs(conversation_id, [listed["epoch"]])

    async def _statement_fields(self, conversation_id: str, action: str, subject: str) -> dict:
        """The `statement` a members-mode membership request carries (none in server mode)."""
        if conversation_id not in self.conversations:
            await self._refresh_conversations()  # its event has not reached me yet
        if self.state(conversation_id).key_origin != "members":
            return {}
        hashes = await self.checked_keys_of(subject) if action == "add" else (b"", b"")
        return {
            "statement": self.sign_statement(conversation_id, action, subject, hashes).to_json()
        }

    async def invite(self, conversation_id: str, username: str) -> int:
        fields = await self._statement_fields(conversation_id, "add", username)
        reply = await self.request(
            "invite.send", conversation=conversation_id, username=username, **fields
        )
        return reply["invitation"]["id"]

    async def remove_member(self, conversation_id: str, username: str) -> None:
        fields = await self._statement_fields(conversation_id, "remove", username)
        await self.request(
            "member.remove", conversation=conversation_id, username=username, **fields
        )

    async def accept_invitation(self, invitation_id: int) -> str:
        reply = await self.request("invite.accept", invitation=invitation_id)
        joined = reply["details"]
        state = self._track(joined)
        if not joined["epoch_pending"]:
            # server origin: my first key is already stored; do not wait for its event
            await self.fetch_epochs(state.id, [joined["epoch"]])
        await self.wait_for_epoch(state.id, joined["epoch"] + (1 if joined["epoch_pending"] else 0))
        return state.id

    async def accept_request(self, conversation_id: str) -> None:
        """Accept a message request (a conversation someone who is not a mutual contact
        put me in): presence flows through it from now on."""
        await self.request("conversation.accept", conversation=conversation_id)

    async def block(self, username: str) -> None:
        """Refuse conversations and invitations from `username` from now on."""
        await self.request("user.block", username=username)

    async def decline_invitation(self, invitation_id: int) -> None:
        await self.request("invite.decline", invitation=invitation_id)

    async def leave(self, conversation_id: str) -> None:
        fields = await self._statement_fields(conversation_id, "leave", self.username)
        await self.request("conversation.leave", conversation=conversation_id, **fields)

    async def send_text(self, conversation_id: str, text: str, *, attempts: int = 6) -> dict:
        """Encrypt once, then send until acknowledged: a retry after a timeout, a
        reconnect or a retryable error carries the same client_id, so the server stores
        it once and acknowledges it again (never a duplicate)."""
        body = self.state(conversation_id).encrypt(
            text,
            sender=self.username,
            device=self.device,
            signing_key=self.keys.signing_key,
            signing_serial=self.keys.signing_serial,
        )
        return await self.send_body(body, attempts=attempts)

    async def send_body(self, body: dict, *, attempts: int = 6) -> dict:
        for attempt in range(attempts):
            try:
                return await self.request("message.send", **body)
            except TimeoutError:
                pass
            except ProtocolError as refused:
                if refused.code not in RETRYABLE_CODES or attempt == attempts - 1:
                    raise
            await asyncio.sleep(backoff(attempt))
        raise ProtocolError("unavailable", "The message could not be sent; try again.")

    async def open_message(self, message: dict, *, check_replay: bool = True) -> DecryptedMessage:
        """Verify the sender's certificate and signature, then decrypt."""
        body, certificate = await self.trust.certificate(
            self.http,
            message["sender_serial"],
            username=message["sender"],
            kind="signing",
            at=_stored_at(message.get("sent_at")),
        )
        if body["kind"] != "signing":
            raise TrustError("untrusted_certificate", "Not a signing certificate.")
        self.trust.check_pin(message["sender"], "signing", public_spki(certificate))
        state = self.conversations[message["conversation"]]
        if message["epoch"] not in state.epoch_keys:
            await self.fetch_epochs(state.id, [message["epoch"]])
        if not check_replay:
            saved = dict(state.sender_sequences)
            state.sender_sequences.clear()
            try:
                return state.decrypt(message, sender_public_key=certificate.public_key())
            finally:
                state.sender_sequences = saved
        return state.decrypt(message, sender_public_key=certificate.public_key())

    async def fetch_epochs(self, conversation_id: str, numbers: list[int]) -> None:
        listed = await self.request("epoch.get", conversation=conversation_id, epochs=numbers)
        for record in listed["epochs"]:
            await self._accept_epoch(record, live=False)

    async def receive_text(
        self, conversation_id: str | None = None, timeout: float = 10
    ) -> DecryptedMessage:
        """The next new message (duplicates skipped), verified and decrypted, then acked.
        A refused message raises its TrustError (KeyChanged: the sender's key is not the
        pinned one); so does a key change refused meanwhile in that conversation; nothing
        in time is NoMessage."""

        def match():
            for index, event in enumerate(self.inbox):
                if event["type"] == "message.new" and conversation_id in (
                    None,
                    event["message"]["conversation"],
                ):
                    return self.inbox.pop(index)
            return None

        while True:
            # Quiet for a while: the live event of the newest message may have been lost
            # (no later one shows the gap), so the database is asked meanwhile (§7).
            catching_up = asyncio.create_task(self._catch_up_while_quiet(conversation_id))
            try:
                event = await self._wait_until(
                    match,
                    timeout=timeout,
                    what=f"message in {conversation_id or 'any conversation'}",
                    key_changes_in=conversation_id or "*",
                )
            finally:
                catching_up.cancel()
            message = event["message"]
            state = self.conversations.get(message["conversation"])
            if state is None or state.is_duplicate(message["order"]):
                continue
            if message["sender"] == self.username:
                state.seen_orders.add(message["order"])  # my own, echoed to all my tabs
                continue
            opened = await self.open_message(message)
            if not self._more_queued(message["conversation"]):
                # one receipt for a run of messages: the newest covers the ones before
                await self.ack_delivery(message["conversation"], message["order"])
            return opened

    async def _catch_up_while_quiet(self, conversation_id: str | None) -> None:
        """Every IDLE_CATCH_UP_SECONDS, queue what is stored after the newest message I
        have (in one conversation or in all of mine); cancelled when the wait ends."""
        while True:
            await asyncio.sleep(IDLE_CATCH_UP_SECONDS)
            for conversation in [conversation_id] if conversation_id else list(self.conversations):
                try:
                    await self._fetch_since(conversation, max(self.queued.get(conversation, {0})))
                except (ProtocolError, TimeoutError):
                    break  # offline for now: the reconnect resyncs

    def _more_queued(self, conversation_id: str) -> bool:
        return any(
            event["type"] == "message.new" and event["message"]["conversation"] == conversation_id
            for event in self.inbox
        )

    async def ack_delivery(self, conversation_id: str, up_to: int) -> None:
        """Tell the server (and the senders) what arrived; best effort: a lost receipt is
        covered by the next one, and the backlog at the next connect is de-duplicated."""
        try:
            await self.request("delivery.ack", conversation=conversation_id, up_to=up_to)
        except (ProtocolError, TimeoutError) as refused:
            self.problems.append(refused)

    async def history(self, conversation_id: str, since: int = 0, limit: int = 200) -> list:
        """Every stored message this client may read, opened; refused ones as TrustError."""
        reply = await self.request(
            "conversation.history", conversation=conversation_id, since=since, limit=limit
        )
        opened: list[DecryptedMessage | TrustError] = []
        for message in reply["messages"]:
            try:
                opened.append(await self.open_message(message, check_replay=False))
            except TrustError as problem:
                opened.append(problem)
        return opened


def _conversation_of(event: dict) -> str | None:
    """The conversation an event concerns, wherever the event keeps it."""
    for holder in (event, event.get("message"), event.get("epoch"), event.get("invitation")):
        if isinstance(holder, dict) and isinstance(holder.get("conversation"), str):
            return holder["conversation"]
    return None


def _stored_at(text: str | None) -> dt.datetime | None:
    """The server's storage time of a record or message: certificates are checked as of
    then, so history signed before a certificate expired still verifies."""
    return dt.datetime.fromisoformat(text) if text else None
