"""The server CA: create, rotate, load its encrypted private keys, sign certificates and CRLs.

Private keys are PKCS#8 PEM encrypted with BestAvailableEncryption under CA_PASSPHRASE,
one file per key under PKI_DIR, named by the key's subject key identifier.
"""

import datetime as dt
import functools
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from keys.models import AuditEvent, Certificate, CertificateAuthority, DsaParameters


class PkiNotReady(Exception):
    """The CA is missing or its private key cannot be read: a configuration problem."""


def _passphrase() -> bytes:
    if not settings.CA_PASSPHRASE:
        raise PkiNotReady(
            "SECURECHAT_CA_PASSPHRASE is not set: the CA private key cannot be decrypted."
        )
    return settings.CA_PASSPHRASE.encode()


def _key_path(subject_key_id: str) -> Path:
    return Path(settings.PKI_DIR) / f"{subject_key_id}.key.pem"


def _write_private_key(private_key, subject_key_id: str) -> None:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_passphrase()),
    )
    path = _key_path(subject_key_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


@functools.lru_cache(maxsize=8)
def _read_private_key(subject_key_id: str, passphrase: bytes):
    path = _key_path(subject_key_id)
    try:
        data = path.read_bytes()
    except OSError:
        raise PkiNotReady(f"The CA private key file {path} is missing or unreadable.") from None
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError):
        raise PkiNotReady(
            f"Cannot decrypt {path}: SECURECHAT_CA_PASSPHRASE is wrong or the file is damaged."
        ) from None


def load_private_key(subject_key_id: str):
    """The decrypted private key of a CA or of the server signing key."""
    return _read_private_key(subject_key_id, _passphrase())


def ski_hex(public_key) -> str:
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex()


def active_ca() -> CertificateAuthority:
    ca = CertificateAuthority.objects.filter(status=CertificateAuthority.Status.ACTIVE).last()
    if ca is None:
        raise PkiNotReady("No certificate authority exists: run `manage.py init_pki`.")
    return ca


def ca_certificate(ca: CertificateAuthority) -> x509.Certificate:
    return x509.load_der_x509_certificate(bytes(ca.certificate_der))


def _create_ca() -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = ski_hex(key.public_key())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecureChat"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"SecureChat CA {ski[:8]}"),
        ]
    )
    now = timezone.now()
    not_after = now + dt.timedelta(days=settings.CA_VALIDITY_DAYS)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private_key(key, ski)
    return CertificateAuthority.objects.create(
        subject_key_id=ski,
        certificate_der=certificate.public_bytes(serialization.Encoding.DER),
        not_after=not_after,
    )


def key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=not signing,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def build_certificate(
    ca: CertificateAuthority,
    public_key,
    *,
    common_name: str,
    user_id: str,
    signing: bool,
    validity: dt.timedelta | None = None,
) -> x509.Certificate:
    """Sign one end-entity certificate with the CA's key, valid for `validity` (default
    CERTIFICATE_VALIDITY_DAYS)."""
    issuer = ca_certificate(ca)
    now = timezone.now()
    if validity is None:
        validity = dt.timedelta(days=settings.CERTIFICATE_VALIDITY_DAYS)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.USER_ID, user_id),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(signing=signing), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(load_private_key(ca.subject_key_id), hashes.SHA256())
    )


def _issue_server_signing_key(
    ca: CertificateAuthority, *, validity: dt.timedelta | None = None
) -> Certificate:
    """A new server signing key and certificate; the active one becomes superseded (it
    stays published, so key records it signed keep verifying)."""
    from keys.services import store_certificate  # services imports this module

    key = ec.generate_private_key(ec.SECP256R1())
    _write_private_key(key, ski_hex(key.public_key()))
    certificate = build_certificate(
        ca,
        key.public_key(),
        common_name="SecureChat server",
        user_id="server",
        signing=True,
        validity=validity,
    )
    Certificate.objects.filter(
        kind=Certificate.Kind.SERVER_SIGNING, status=Certificate.Status.ACTIVE
    ).update(status=Certificate.Status.SUPERSEDED, superseded_at=timezone.now())
    return store_certificate(certificate, ca=ca, owner=None, kind=Certificate.Kind.SERVER_SIGNING)


def server_signing_certificate() -> Certificate:
    certificate = Certificate.objects.filter(
        kind=Certificate.Kind.SERVER_SIGNING, status=Certificate.Status.ACTIVE
    ).last()
    if certificate is None:
        raise PkiNotReady("No server signing key exists: run `manage.py init_pki`.")
    return certificate


def server_signing_key(certificate: Certificate | None = None):
    """The private server signing key of `certificate` (default: the active one)."""
    certificate = certificate or server_signing_certificate()
    public = x509.load_der_x509_certificate(bytes(certificate.certificate_der)).public_key()
    return load_private_key(ski_hex(public))


def renewal_due(not_after: dt.datetime) -> bool:
    """Expired, or expiring within CERTIFICATE_RENEW_DAYS."""
    return not_after <= timezone.now() + dt.timedelta(days=settings.CERTIFICATE_RENEW_DAYS)


def _lock_pki() -> None:
    """Serialize PKI changes across workers. The CA rows are locked because they stay
    put while server keys come and go: a lock on the active server certificate would
    let a waiting worker find no active row once the first worker had superseded it.
    (SQLite runs IMMEDIATE transactions, which serialize writers already.)"""
    list(CertificateAuthority.objects.select_for_update().order_by("pk").values_list("pk"))


def _renew_server_signing_key(ca: CertificateAuthority, old: Certificate) -> Certificate:
    renewed = _issue_server_signing_key(ca)
    AuditEvent.objects.create(
        action="server_key.renewed", serial=renewed.serial, detail=f"replaces {old.serial}"
    )
    return renewed


def usable_server_signing_certificate() -> Certificate:
    """The active server signing certificate, renewed first when it is due, so an expired
    server key never signs. Two workers racing here issue one new key between them."""
    certificate = server_signing_certificate()
    if not renewal_due(certificate.not_after):
        return certificate  # the common case takes no lock
    with transaction.atomic():
        _lock_pki()
        certificate = server_signing_certificate()  # another worker may have renewed it
        if renewal_due(certificate.not_after):
            certificate = _renew_server_signing_key(active_ca(), certificate)
    return certificate


def current_dsa_parameters() -> dsa.DSAParameters:
    record = DsaParameters.objects.last()
    if record is None:
        raise PkiNotReady("No DSA parameters exist: run `manage.py init_pki`.")
    numbers = dsa.DSAParameterNumbers(p=int(record.p, 16), q=int(record.q, 16), g=int(record.g, 16))
    return numbers.parameters()


@transaction.atomic
def initialize_pki(*, rotate: bool = False, dsa_parameters=None) -> list[str]:
    """Create what is missing (CA, server signing key, DSA parameters) and renew a server
    signing key that is due; with rotate, a new CA that issues from now on while the old
    one keeps verifying. Returns what was done."""
    done = []
    _lock_pki()
    has_ca = CertificateAuthority.objects.filter(status=CertificateAuthority.Status.ACTIVE)
    if rotate or not has_ca.exists():
        retired = has_ca.update(status=CertificateAuthority.Status.RETIRED)
        ca = _create_ca()
        action = "ca.rotated" if retired else "ca.created"
        AuditEvent.objects.create(action=action, serial=ca.subject_key_id)
        done.append(f"{action} {ca.subject_key_id}")
    ca = active_ca()
    load_private_key(ca.subject_key_id)  # fail now, not at the first registration
    server_cert = Certificate.objects.filter(
        kind=Certificate.Kind.SERVER_SIGNING, status=Certificate.Status.ACTIVE
    ).last()
    if server_cert is None or server_cert.issuer_id != ca.pk:
        server_cert = _issue_server_signing_key(ca)
        AuditEvent.objects.create(action="server_key.issued", serial=server_cert.serial)
        done.append(f"server_key.issued {server_cert.serial}")
    elif renewal_due(server_cert.not_after):
        server_cert = _renew_server_signing_key(ca, server_cert)
        done.append(f"server_key.renewed {server_cert.serial}")
    if not DsaParameters.objects.exists():
        parameters = dsa_parameters or dsa.generate_parameters(key_size=2048)
        numbers = parameters.parameter_numbers()
        DsaParameters.objects.create(p=f"{numbers.p:x}", q=f"{numbers.q:x}", g=f"{numbers.g:x}")
        AuditEvent.objects.create(action="dsa_parameters.created")
        done.append("dsa_parameters.created")
    return done


def build_crl(
    ca: CertificateAuthority, revoked: list[Certificate]
) -> x509.CertificateRevocationList:
    now = timezone.now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate(ca).subject)
        .last_update(now)
        .next_update(now + dt.timedelta(hours=1))
    )
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(certificate.serial, 16))
            .revocation_date(certificate.revoked_at)
            .build()
        )
    return builder.sign(load_private_key(ca.subject_key_id), hashes.SHA256())
