"""PKI rules: proof of possession, issuance, rotation, revocation, look-ups, key backup.

Plain Python: views, the admin, commands and the chat app all call these.
"""

import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import User
from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from cryptokit.keys import KeyInfo, inspect_encryption_key, inspect_signing_key
from keys.ca import (
    active_ca,
    build_certificate,
    build_crl,
    server_signing_key,
    usable_server_signing_certificate,
)
from keys.models import (
    AuditEvent,
    Certificate,
    CertificateAuthority,
    KeyBackup,
    KeyRegistration,
    PopChallenge,
)
from securechat.jsonapi import ApiError
from securechat.securitylog import security_event

# Sent after the commit of a revocation: the chat app re-keys the owner's conversations.
certificate_revoked = Signal()  # kwargs: certificate (Certificate), reason (str)
# Sent after the commit of a new certificate pair: first registration, rotation, or (with
# renewed=True) renewal of the same keys, after which nothing needs re-keying.
keys_registered = Signal()  # kwargs: user, signing, encryption (Certificate), renewed (bool)


class PkiError(ApiError):
    """A refused PKI request (stable code, sentence, HTTP status)."""


@dataclass(frozen=True)
class Registration:
    """The certificates one registration issued; `renewed` when the keys are the user's
    current ones (a renewal), False when they are new."""

    signing: Certificate
    encryption: Certificate
    renewed: bool


@dataclass(frozen=True)
class Challenge:
    id: int
    nonce: bytes
    encrypted_secret: bytes
    expires: dt.datetime


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _inspect(signing_spki: bytes, encryption_spki: bytes) -> tuple[KeyInfo, KeyInfo]:
    try:
        return inspect_signing_key(signing_spki), inspect_encryption_key(encryption_spki)
    except CryptoError as exc:
        raise PkiError(exc.code, str(exc)) from None


def _refuse_reused_keys(user: User, *spkis: bytes) -> None:
    hashes = [_sha256_hex(spki) for spki in spkis]
    if hashes[0] == hashes[1]:
        raise PkiError("key_reused", "The signing and encryption keys must differ.")
    if Certificate.objects.filter(spki_sha256__in=hashes).exclude(owner=user).exists():
        raise PkiError("key_reused", "One of these keys is already certified for someone else.")
    # A revoked key stays revoked: certifying it again would undo the revocation.
    if Certificate.objects.filter(spki_sha256__in=hashes, status=Certificate.Status.REVOKED):
        raise PkiError("key_revoked", "One of these keys was revoked; make new keys.")


def _make_room_for_challenge(user: User) -> None:
    """Expired and answered challenges are deleted (by anyone's request: they are worthless),
    and a user holds at most POP_CHALLENGES_PER_USER open ones; the user's row is locked so
    parallel requests are counted one after another."""
    now = timezone.now()
    PopChallenge.objects.filter(Q(expires__lt=now) | Q(used=True)).delete()
    User.objects.select_for_update().filter(pk=user.pk).first()
    if PopChallenge.objects.filter(user=user).count() >= settings.POP_CHALLENGES_PER_USER:
        raise PkiError(
            "too_many_challenges",
            f"At most {settings.POP_CHALLENGES_PER_USER} open challenges; answer or wait "
            f"{settings.POP_CHALLENGE_TTL_SECONDS} s.",
            status=429,
        )


@transaction.atomic
def create_challenge(user: User, signing_spki: bytes, encryption_spki: bytes) -> Challenge:
    """Check the keys, then hand out a single-use nonce and a secret encrypted to the
    encryption key; the client proves possession of both private keys by answering."""
    _, encryption = _inspect(signing_spki, encryption_spki)
    _refuse_reused_keys(user, signing_spki, encryption_spki)
    _make_room_for_challenge(user)
    nonce, secret = os.urandom(32), os.urandom(32)
    record = PopChallenge.objects.create(
        user=user,
        nonce=nonce,
        secret_sha256=hashlib.sha256(secret).digest(),
        signing_spki_sha256=_sha256_hex(signing_spki),
        encryption_spki_sha256=_sha256_hex(encryption_spki),
        expires=timezone.now() + dt.timedelta(seconds=settings.POP_CHALLENGE_TTL_SECONDS),
    )
    return Challenge(
        id=record.pk,
        nonce=nonce,
        encrypted_secret=wrapping.oaep_encrypt(encryption.public_key, secret),
        expires=record.expires,
    )


def _consume_challenge(user: User, challenge_id: int) -> PopChallenge:
    """Mark the challenge used, whatever comes next, so no answer can be tried twice."""
    claimed = PopChallenge.objects.filter(pk=challenge_id, user=user, used=False).update(used=True)
    if not claimed:
        raise PkiError("challenge_invalid", "Unknown or already used challenge.")
    challenge = PopChallenge.objects.get(pk=challenge_id)
    if challenge.expires < timezone.now():
        raise PkiError("challenge_expired", "The challenge has expired; ask for a new one.")
    return challenge


def store_certificate(
    certificate: x509.Certificate,
    *,
    ca: CertificateAuthority,
    owner: User | None,
    kind: str,
    registration: KeyRegistration | None = None,
) -> Certificate:
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    inspect = inspect_encryption_key if kind == Certificate.Kind.ENCRYPTION else inspect_signing_key
    info = inspect(spki)
    return Certificate.objects.create(
        serial=f"{certificate.serial_number:x}",
        owner=owner,
        registration=registration,
        issuer=ca,
        kind=kind,
        algorithm=info.algorithm,
        key_size=info.key_size,
        spki_der=spki,
        spki_sha256=_sha256_hex(spki),
        certificate_der=certificate.public_bytes(serialization.Encoding.DER),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def register_keys(
    user: User,
    *,
    challenge_id: int,
    signing_spki: bytes,
    encryption_spki: bytes,
    signature: bytes,
    secret: bytes,
) -> Registration:
    """Verify the proof of possession, then certify both keys; the user's previous pair
    is superseded (it still verifies history, but signs and receives nothing new).
    Exactly the keys of the user's usable pair is a renewal: same keys, new validity."""
    # Consumed in its own commit: a wrong answer burns the challenge, so none is retried.
    challenge = _consume_challenge(user, challenge_id)
    signing_info, encryption_info = _inspect(signing_spki, encryption_spki)
    if (_sha256_hex(signing_spki), _sha256_hex(encryption_spki)) != (
        challenge.signing_spki_sha256,
        challenge.encryption_spki_sha256,
    ):
        raise PkiError("challenge_mismatch", "These are not the keys the challenge was made for.")
    _refuse_reused_keys(user, signing_spki, encryption_spki)
    signed = encoding.pop_challenge(
        username=user.username,
        nonce=bytes(challenge.nonce),
        signing_spki=signing_spki,
        encryption_spki=encryption_spki,
    )
    try:
        signing.verify(signing_info.public_key, signature, signed)
    except CryptoError:
        raise PkiError("pop_signature_invalid", "The nonce signature does not verify.") from None
    if not hmac.compare_digest(hashlib.sha256(secret).digest(), bytes(challenge.secret_sha256)):
        raise PkiError("pop_decryption_invalid", "The decrypted challenge is wrong.")
    with transaction.atomic():
        registration = _issue_pair(user, signing_info, encryption_info)
        transaction.on_commit(
            lambda: keys_registered.send(
                sender=Certificate,
                user=user,
                signing=registration.signing,
                encryption=registration.encryption,
                renewed=registration.renewed,
            )
        )
    return registration


def _is_renewal(previous: list[Certificate], signing_spki: bytes, encryption_spki: bytes) -> bool:
    """The new keys are exactly the usable active pair. An expired pair does not count:
    epochs made meanwhile left its owner out, so they need the re-key a new pair gets."""
    now = timezone.now()
    usable = {c.kind: c.spki_sha256 for c in previous if c.not_after > now}
    wanted = {
        Certificate.Kind.SIGNING: _sha256_hex(signing_spki),
        Certificate.Kind.ENCRYPTION: _sha256_hex(encryption_spki),
    }
    return len(previous) == 2 and usable == wanted


def _issue_pair(user: User, signing_info: KeyInfo, encryption_info: KeyInfo) -> Registration:
    ca = active_ca()
    previous = list(
        Certificate.objects.select_for_update().filter(owner=user, status=Certificate.Status.ACTIVE)
    )
    # Decided under the row lock, so a concurrent rotation cannot change the answer.
    renewed = _is_renewal(previous, signing_info.spki_der, encryption_info.spki_der)
    now = timezone.now()
    Certificate.objects.filter(pk__in=[c.pk for c in previous]).update(
        status=Certificate.Status.SUPERSEDED, superseded_at=now
    )
    registration = KeyRegistration.objects.create(user=user)
    issued = []
    for info, kind in (
        (signing_info, Certificate.Kind.SIGNING),
        (encryption_info, Certificate.Kind.ENCRYPTION),
    ):
        certificate = build_certificate(
            ca,
            info.public_key,
            common_name=user.username,
            user_id=str(user.pk),
            signing=kind == Certificate.Kind.SIGNING,
        )
        record = store_certificate(
            certificate, ca=ca, owner=user, kind=kind, registration=registration
        )
        AuditEvent.objects.create(
            action="certificate.renewed" if renewed else "certificate.issued",
            actor=user,
            subject=user,
            serial=record.serial,
            detail=f"{kind} {info.algorithm}-{info.key_size}",
        )
        issued.append(record)
    for old in previous:
        AuditEvent.objects.create(
            action="certificate.superseded", actor=user, subject=user, serial=old.serial
        )
    return Registration(signing=issued[0], encryption=issued[1], renewed=renewed)


def record_audit(
    action: str,
    *,
    actor: User | None,
    subject: User | None = None,
    serial: str = "",
    detail: str = "",
    via: str = "",
) -> AuditEvent:
    """One audit row, and after the commit one security log line (so a rolled-back change
    logs nothing). `via` names the path (admin, command, owner, deactivation); the row
    keeps it in front of the detail, since a command has no actor to show."""
    event = AuditEvent.objects.create(
        action=action,
        actor=actor,
        subject=subject,
        serial=serial,
        detail=(f"{via}: {detail}" if via else detail)[:300],
    )
    fields = {
        "actor": actor.username if actor else None,
        "subject": subject.username if subject else None,
        "serial": serial,
        "via": via,
        "detail": detail,
    }
    transaction.on_commit(lambda: security_event(action, **fields))
    return event


@transaction.atomic
def revoke_certificate(
    certificate: Certificate, *, reason: str, by: User | None, via: str = ""
) -> list[str]:
    """Revoke a certificate and its pair partner (the keys live on the same device).
    Returns the serials revoked; listeners hear of it after the commit. The admin action,
    `manage.py revoke`, the owner's "lost device" request and deactivation all come here."""
    query = Certificate.objects.select_for_update().exclude(status=Certificate.Status.REVOKED)
    if certificate.registration_id:
        query = query.filter(registration_id=certificate.registration_id)
    else:
        query = query.filter(pk=certificate.pk)
    targets = list(query)
    now = timezone.now()
    for target in targets:
        target.status = Certificate.Status.REVOKED
        target.revoked_at = now
        target.revocation_reason = reason[:200]
        target.save(update_fields=["status", "revoked_at", "revocation_reason"])
        record_audit(
            "certificate.revoked",
            actor=by,
            subject=target.owner,
            serial=target.serial,
            detail=reason,
            via=via,
        )
        transaction.on_commit(
            lambda target=target: certificate_revoked.send(
                sender=Certificate, certificate=target, reason=reason
            )
        )
    return [target.serial for target in targets]


def revoke_own_keys(user: User, reason: str) -> list[str]:
    """The user's 'lost device' button: revoke the active pair."""
    active = Certificate.objects.filter(owner=user, status=Certificate.Status.ACTIVE).first()
    if active is None:
        raise PkiError("no_active_keys", "You have no active keys to revoke.", status=404)
    return revoke_certificate(active, reason=reason or "revoked by owner", by=user, via="owner")


def revoke_user_keys(user: User, *, reason: str, by: User | None, via: str) -> list[str]:
    """An operator revokes every active certificate of `user` (normally one pair; more
    only if something went wrong). Returns the serials revoked, [] when there were none."""
    serials: list[str] = []
    with transaction.atomic():
        active = Certificate.objects.filter(owner=user, status=Certificate.Status.ACTIVE)
        for certificate in active.order_by("pk"):
            if certificate.serial not in serials:
                serials += revoke_certificate(certificate, reason=reason, by=by, via=via)
    return serials


def current_certificates(user: User) -> dict[str, Certificate]:
    """The user's active certificates by kind ("signing", "encryption")."""
    return {
        cert.kind: cert
        for cert in Certificate.objects.filter(
            owner=user, status=Certificate.Status.ACTIVE, not_after__gt=timezone.now()
        )
    }


def certificate_by_serial(serial: str) -> Certificate:
    certificate = Certificate.objects.filter(serial=serial.lower()).first()
    if certificate is None:
        raise PkiError("unknown_certificate", "No certificate has this serial.", status=404)
    return certificate


def require_usable_certificate(serial: str, *, kind: str, owner: User | None = None) -> Certificate:
    """The certificate, if it may be used now for `kind` (by `owner`); refused otherwise.
    Read from the database on every call so a revocation counts from the next request."""
    certificate = certificate_by_serial(serial)
    if certificate.kind != kind or (owner is not None and certificate.owner_id != owner.pk):
        raise PkiError("wrong_certificate", f"This is not the {kind} certificate of that user.")
    if certificate.status == Certificate.Status.REVOKED:
        raise PkiError("certificate_revoked", "This certificate has been revoked.")
    if certificate.status == Certificate.Status.SUPERSEDED:
        raise PkiError("certificate_superseded", "This certificate has been replaced.")
    if certificate.not_after <= timezone.now():
        raise PkiError("certificate_expired", "This certificate has expired.")
    return certificate


def revocation_list() -> list[dict]:
    return [
        {"serial": c.serial, "revoked_at": c.revoked_at.isoformat(), "reason": c.revocation_reason}
        for c in Certificate.objects.filter(status=Certificate.Status.REVOKED).order_by(
            "revoked_at"
        )
    ]


def revocation_crl_der() -> bytes:
    """A CRL signed by the active CA listing every revoked certificate."""
    revoked = list(Certificate.objects.filter(status=Certificate.Status.REVOKED))
    return build_crl(active_ca(), revoked).public_bytes(serialization.Encoding.DER)


def server_signer() -> tuple[str, object]:
    """The serial and private key of the server's certified signing key, renewed first
    when it expires within CERTIFICATE_RENEW_DAYS (an expired key never signs)."""
    certificate = usable_server_signing_certificate()
    return certificate.serial, server_signing_key(certificate)


def active_encryption_certificates(user_ids: list[int]) -> dict[int, Certificate]:
    """Each user's usable encryption certificate, for wrapping epoch keys."""
    return {
        cert.owner_id: cert
        for cert in Certificate.objects.select_related("owner").filter(
            owner_id__in=user_ids,
            kind=Certificate.Kind.ENCRYPTION,
            status=Certificate.Status.ACTIVE,
            not_after__gt=timezone.now(),
        )
    }


def read_key_backup(user: User) -> KeyBackup:
    backup = KeyBackup.objects.filter(user=user).first()
    if backup is None:
        raise PkiError("no_backup", "No key backup is stored.", status=404)
    return backup


@transaction.atomic
def store_key_backup(user: User, blob: bytes, version: int) -> KeyBackup:
    """Replace the caller's own backup; `version` must be the stored version + 1, so two
    devices cannot silently overwrite each other's backups."""
    if not blob or len(blob) > settings.KEY_BACKUP_MAX_BYTES:
        raise PkiError(
            "backup_size", f"A key backup must hold 1 to {settings.KEY_BACKUP_MAX_BYTES} bytes."
        )
    backup = KeyBackup.objects.select_for_update().filter(user=user).first()
    expected = (backup.version if backup else 0) + 1
    if version != expected:
        raise PkiError("backup_version_conflict", f"Expected version {expected}.", status=409)
    if backup is None:
        return KeyBackup.objects.create(user=user, blob=blob, version=version)
    backup.blob, backup.version = blob, version
    backup.save()
    return backup
