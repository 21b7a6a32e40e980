"""JSON endpoints under /api/keys/: translate HTTP to keys.services and back."""

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.http import HttpRequest, HttpResponse, JsonResponse
from pydantic import Field

from accounts.models import User
from cryptokit.fingerprints import fingerprint
from keys import services
from keys.ca import active_ca, current_dsa_parameters, server_signing_certificate
from keys.models import Certificate, CertificateAuthority
from securechat.jsonapi import B64Bytes, Body, b64, json_endpoint


class KeysBody(Body):
    signing_key: B64Bytes
    encryption_key: B64Bytes


class RegisterBody(KeysBody):
    challenge_id: int
    signature: B64Bytes
    secret: B64Bytes


class RevokeBody(Body):
    reason: str = Field(default="", max_length=200)


class BackupBody(Body):
    blob: B64Bytes
    version: int


def _pem(der: bytes) -> str:
    certificate = x509.load_der_x509_certificate(bytes(der))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def certificate_json(certificate: Certificate) -> dict:
    return {
        "serial": certificate.serial,
        "owner": certificate.owner.username if certificate.owner_id else None,
        "kind": certificate.kind,
        "algorithm": certificate.algorithm,
        "key_size": certificate.key_size,
        "status": certificate.status,
        "fingerprint": fingerprint(bytes(certificate.spki_der)),
        "not_after": certificate.not_after.isoformat(),
        "revoked_at": certificate.revoked_at.isoformat() if certificate.revoked_at else None,
        "certificate": b64(certificate.certificate_der),
        "pem": _pem(certificate.certificate_der),
    }


@json_endpoint(methods={"GET": None})
def authority(request: HttpRequest, body: None) -> JsonResponse:
    """CA certificates (active first), the server signing certificate, DSA parameters."""
    active = active_ca()
    authorities = sorted(CertificateAuthority.objects.all(), key=lambda ca: ca.pk != active.pk)
    numbers = current_dsa_parameters().parameter_numbers()
    return JsonResponse(
        {
            "certificates": [b64(ca.certificate_der) for ca in authorities],
            "pem": [_pem(ca.certificate_der) for ca in authorities],
            "server_signing": certificate_json(server_signing_certificate()),
            "dsa_parameters": {"p": f"{numbers.p:x}", "q": f"{numbers.q:x}", "g": f"{numbers.g:x}"},
        }
    )


@json_endpoint(methods={"POST": KeysBody})
def challenge(request: HttpRequest, body: KeysBody) -> JsonResponse:
    issued = services.create_challenge(request.user, body.signing_key, body.encryption_key)
    return JsonResponse(
        {
            "challenge_id": issued.id,
            "nonce": b64(issued.nonce),
            "encrypted_secret": b64(issued.encrypted_secret),
            "expires": issued.expires.isoformat(),
        },
        status=201,
    )


@json_endpoint(methods={"POST": RegisterBody})
def register(request: HttpRequest, body: RegisterBody) -> JsonResponse:
    registration = services.register_keys(
        request.user,
        challenge_id=body.challenge_id,
        signing_spki=body.signing_key,
        encryption_spki=body.encryption_key,
        signature=body.signature,
        secret=body.secret,
    )
    return JsonResponse(
        {
            "signing": certificate_json(registration.signing),
            "encryption": certificate_json(registration.encryption),
            "renewed": registration.renewed,
        },
        status=201,
    )


@json_endpoint(methods={"GET": None})
def user_certificates(request: HttpRequest, body: None, username: str) -> JsonResponse:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise services.PkiError("unknown_user", "No such user.", status=404)
    current = services.current_certificates(user)
    return JsonResponse({kind: certificate_json(cert) for kind, cert in current.items()})


@json_endpoint(methods={"GET": None})
def certificate(request: HttpRequest, body: None, serial: str) -> JsonResponse:
    return JsonResponse(certificate_json(services.certificate_by_serial(serial)))


@json_endpoint(methods={"GET": None})
def revocations(request: HttpRequest, body: None) -> JsonResponse:
    return JsonResponse({"revoked": services.revocation_list()})


@json_endpoint(methods={"GET": None})
def crl(request: HttpRequest, body: None) -> HttpResponse:
    return HttpResponse(services.revocation_crl_der(), content_type="application/pkix-crl")


@json_endpoint(methods={"POST": RevokeBody})
def revoke_own(request: HttpRequest, body: RevokeBody) -> JsonResponse:
    return JsonResponse({"revoked": services.revoke_own_keys(request.user, body.reason)})


@json_endpoint(methods={"GET": None, "PUT": BackupBody})
def backup(request: HttpRequest, body: BackupBody | None) -> JsonResponse:
    """Always the caller's own backup: there is no way to name someone else's."""
    if request.method == "PUT":
        stored = services.store_key_backup(request.user, body.blob, body.version)
    else:
        stored = services.read_key_backup(request.user)
    return JsonResponse({"blob": b64(stored.blob), "version": stored.version})
