"""The keys app tells us when keys change; conversations then get a new epoch, so a
revoked key opens nothing new and a rotated key receives the next key."""

from django.dispatch import receiver

from chat.events import publish_to_users
from chat.models import KeyEpoch
from chat.services.conversations import presence_audience
from chat.services.epochs import rekey_conversations_of
from keys.models import Certificate
from keys.services import certificate_revoked, keys_registered


@receiver(certificate_revoked)
def rekey_after_revocation(sender, certificate: Certificate, reason: str, **kwargs) -> None:
    if certificate.owner is None:
        return
    publish_to_users(
        presence_audience(certificate.owner),
        {
            "type": "cert.revoked",
            "username": certificate.owner.username,
            "serials": [certificate.serial],
        },
    )
    # A pair is revoked together; re-key once, on the key that wraps.
    if certificate.kind == Certificate.Kind.ENCRYPTION:
        rekey_conversations_of(certificate.owner, KeyEpoch.Reason.KEY_REVOKED)


@receiver(keys_registered)
def rekey_after_new_keys(
    sender, user, signing: Certificate, encryption: Certificate, renewed: bool = False, **kwargs
) -> None:
    if renewed:
        return  # the same keys with new certificates: every epoch key still opens for them
    if rekey_conversations_of(user, KeyEpoch.Reason.KEY_CHANGED):
        publish_to_users(
            presence_audience(user),
            {
                "type": "key.changed",
                "username": user.username,
                "signing_serial": signing.serial,
                "encryption_serial": encryption.serial,
            },
        )
