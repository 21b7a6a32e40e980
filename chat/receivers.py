"""The keys app tells us when keys change; conversations then get a new epoch, so a
revoked key opens nothing new and a rotated key receives the next key.

The accounts side tells us when a login session ends: logout, a password change,
deactivation and deletion close the sockets of that session or user on every worker
(chat/services/session.py)."""

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from accounts.models import User
from chat.events import publish_to_users
from chat.models import KeyEpoch
from chat.services.conversations import key_audience
from chat.services.epochs import rekey_conversations_of
from chat.services.session import EndReason, end_session_sockets, end_user_sockets
from keys.models import Certificate
from keys.services import certificate_revoked, keys_registered


@receiver(certificate_revoked)
def rekey_after_revocation(sender, certificate: Certificate, reason: str, **kwargs) -> None:
    if certificate.owner is None:
        return
    publish_to_users(
        key_audience(certificate.owner),
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
            key_audience(user),
            {
                "type": "key.changed",
                "username": user.username,
                "signing_serial": signing.serial,
                "encryption_serial": encryption.serial,
            },
        )


@receiver(user_logged_out)
def close_sockets_of_logged_out_session(sender, request, user, **kwargs) -> None:
    # Sent before the session is flushed: its key still names the sockets to close.
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        end_session_sockets(session_key, EndReason.LOGGED_OUT)


# The fields whose change ends every session of the user: Django's session hash is an
# HMAC of the password hash, and an inactive user may not authenticate.
_SESSION_FIELDS = ("password", "is_active")


@receiver(pre_save, sender=User)
def remember_session_fields(
    sender, instance: User, raw: bool = False, update_fields=None, **kwargs
) -> None:
    """The stored password hash and is_active before this save, to compare after it. One
    read, skipped for saves that touch neither (e.g. last_login at each login)."""
    instance._session_fields_before = None
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(_SESSION_FIELDS):
        return
    instance._session_fields_before = (
        User.objects.filter(pk=instance.pk).values_list(*_SESSION_FIELDS).first()
    )


@receiver(post_save, sender=User)
def close_sockets_when_sessions_end(sender, instance: User, created: bool, **kwargs) -> None:
    """A changed password hash (a password change, a reset, a hash upgrade at login) or a
    deactivation: every socket of the user, the changing session's included (Django
    gives that session a new key, so no socket can prove it belongs to it)."""
    before = getattr(instance, "_session_fields_before", None)
    instance._session_fields_before = None
    if created or before is None:
        return
    password, was_active = before
    if was_active and not instance.is_active:
        end_user_sockets(instance.pk, EndReason.DEACTIVATED)
    elif password != instance.password:
        end_user_sockets(instance.pk, EndReason.PASSWORD_CHANGED)


@receiver(post_delete, sender=User)
def close_sockets_of_deleted_user(sender, instance: User, **kwargs) -> None:
    end_user_sockets(instance.pk, EndReason.DELETED)
