"""A malicious server, for test_malicious_server.py: run in the server's own environment
(its database, its CA passphrase, its Redis), it does what an operator or intruder who
owns the server could do: edit the database, have the CA issue certificates, sign with
the server key, and publish forged events to any user.

    python -m chat.tests.malicious_server <attack> '<json arguments>'

prints a JSON result. Every attack reuses the server's own code where it can, so the
forgeries are exactly what the real server would produce."""

import base64
import datetime as dt
import json
import sys

import django


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def publish(usernames: list[str], event: dict) -> dict:
    """Send `event` to every open socket of these users, as the server would."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from accounts.models import User
    from chat.events import user_group

    layer = get_channel_layer()
    for pk in User.objects.filter(username__in=usernames).values_list("pk", flat=True):
        async_to_sync(layer.group_send)(
            user_group(pk), {"type": "chat.event", "event": {**event, "id": None}}
        )
    return {"published": len(usernames)}


def switch_origin(conversation: str, extra: str) -> dict:
    """Flip a members-mode conversation to server origin in the database, add `extra`,
    and let the server make (and sign) a key record that includes them."""
    from django.db import transaction

    from accounts.models import User
    from chat.models import Conversation, KeyEpoch, Membership
    from chat.services.epochs import start_epoch

    with transaction.atomic():
        # .update() writes the column directly: what an intruder's SQL does.
        Conversation.objects.filter(pk=conversation).update(key_origin="server")
        locked = Conversation.objects.select_for_update().get(pk=conversation)
        Membership.objects.create(conversation=locked, user=User.objects.get(username=extra))
        start_epoch(locked, KeyEpoch.Reason.JOINED)
    return {"epoch": Conversation.objects.get(pk=conversation).current_epoch}


def forged_request(conversation: str, extra: str, asked: str) -> dict:
    """Add `extra` in the database and ask `asked` to make a key for everyone listed."""
    from django.db import transaction

    from accounts.models import User
    from chat.models import Conversation, Membership
    from chat.services import epochs

    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation)
        Membership.objects.create(conversation=locked, user=User.objects.get(username=extra))
        number = locked.current_epoch + 1
        epochs._request_member_epoch(locked, number, "joined", User.objects.get(username=asked))
    return {"epoch": number}


def drop_from_request(conversation: str, dropped: str, asked: str) -> dict:
    """End `dropped`'s membership in the database with no signed leave, and ask `asked`
    for a key that leaves them out."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from chat.models import Conversation, Membership
    from chat.services import epochs

    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation)
        Membership.objects.filter(
            conversation=locked, user__username=dropped, left__isnull=True
        ).update(left=timezone.now())
        number = locked.current_epoch + 1
        epochs._request_member_epoch(locked, number, "left", User.objects.get(username=asked))
    return {"epoch": number}


def restore(conversation: str, epoch: int, members: list[str], key_origin: str) -> dict:
    """Undo an attack: the intruder is gone, the database as it was."""
    from django.db import transaction
    from django.utils import timezone

    from chat.models import Conversation, KeyEpoch, Membership

    with transaction.atomic():
        KeyEpoch.objects.filter(conversation_id=conversation, number__gt=epoch).delete()
        Membership.objects.filter(conversation_id=conversation, left__isnull=True).exclude(
            user__username__in=members
        ).update(left=timezone.now())
        for name in members:
            if not Membership.objects.filter(
                conversation_id=conversation, user__username=name, left__isnull=True
            ).exists():
                Membership.objects.filter(conversation_id=conversation, user__username=name).update(
                    left=None
                )
        Conversation.objects.filter(pk=conversation).update(
            key_origin=key_origin,
            current_epoch=epoch,
            pending_epoch=None,
            pending_asked=None,
        )
    return {"epoch": epoch}


def second_certificate(conversation: str, impersonate: str, extra: str) -> dict:
    """The CA issues the server a signing certificate under `impersonate`'s name; with it
    the server signs an addition of `extra` and a key record that includes them."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from accounts.models import User
    from chat.models import Conversation
    from chat.services.epochs import member_keys
    from cryptokit import encoding, signing, wrapping
    from cryptokit.membership import Statement
    from keys.ca import active_ca, build_certificate
    from keys.models import Certificate
    from keys.services import current_certificates, store_certificate

    victim = User.objects.get(username=impersonate)
    key = ed25519.Ed25519PrivateKey.generate()
    ca = active_ca()
    issued = build_certificate(
        ca, key.public_key(), common_name=impersonate, user_id=str(victim.pk), signing=True
    )
    forged = store_certificate(issued, ca=ca, owner=victim, kind=Certificate.Kind.SIGNING)
    # Published as superseded so the victim's real pair stays the one the server lists;
    # a client accepts superseded certificates for verification, so this changes nothing.
    Certificate.objects.filter(pk=forged.pk).update(status=Certificate.Status.SUPERSEDED)
    target = current_certificates(User.objects.get(username=extra))
    chat = Conversation.objects.get(pk=conversation)
    statement = Statement.create(
        conversation,
        key,
        action="add",
        subject=extra,
        actor=impersonate,
        actor_serial=forged.serial,
        roster_epoch=chat.roster_epoch,
        key_hashes=(
            bytes.fromhex(target["signing"].spki_sha256),
            bytes.fromhex(target["encryption"].spki_sha256),
        ),
    )
    certificates = {name: cert for _, name, cert in member_keys(chat)}
    certificates[extra] = target["encryption"]
    epoch_key = wrapping.new_epoch_key()
    members = [
        (name, cert.serial, wrapping.oaep_encrypt(bytes(cert.spki_der), epoch_key))
        for name, cert in certificates.items()
    ]
    number = chat.current_epoch + 1
    record = encoding.distribution_record(
        conversation_id=conversation,
        epoch=number,
        previous_epoch=chat.current_epoch,
        roster_epoch=number,
        key_origin="members",
        signer=impersonate,
        signer_serial=forged.serial,
        members=members,
        changes=[statement.signed_bytes(conversation)],
    )
    event = epoch_event(
        conversation,
        number=number,
        previous=chat.current_epoch,
        roster=number,
        signer=impersonate,
        signer_serial=forged.serial,
        signature=signing.sign(key, record),
        members=members,
        changes=[statement.to_json()],
    )
    publish(list(certificates), event)
    return {"epoch": number, "key": b64(epoch_key), "serial": forged.serial}


def epoch_event(
    conversation: str,
    *,
    number,
    previous,
    roster,
    signer,
    signer_serial,
    signature,
    members,
    changes,
    key_origin="members",
) -> dict:
    return {
        "type": "epoch.new",
        "epoch": {
            "conversation": conversation,
            "epoch": number,
            "previous_epoch": previous,
            "roster_epoch": roster,
            "reason": "joined",
            "key_origin": key_origin,
            "signer": signer,
            "signer_serial": signer_serial,
            "signature": b64(signature),
            "changes": changes,
            "members": [
                {"username": name, "serial": serial, "wrapped_key": b64(wrapped)}
                for name, serial, wrapped in members
            ],
            "created": dt.datetime.now(dt.UTC).isoformat(),
        },
    }


def short_lived_server_key(seconds: int) -> dict:
    """Not an attack: an operator's server key that expires in `seconds` (as one would
    after a year), to watch renewal and old records from the clients' side."""
    import datetime as dt

    from keys.ca import _issue_server_signing_key, active_ca

    issued = _issue_server_signing_key(active_ca(), validity=dt.timedelta(seconds=seconds))
    return {"serial": issued.serial, "not_after": issued.not_after.isoformat()}


ATTACKS = {
    "publish": publish,
    "switch_origin": switch_origin,
    "forged_request": forged_request,
    "drop_from_request": drop_from_request,
    "restore": restore,
    "second_certificate": second_certificate,
    "short_lived_server_key": short_lived_server_key,
}


def main() -> None:
    django.setup()
    result = ATTACKS[sys.argv[1]](**json.loads(sys.argv[2]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
