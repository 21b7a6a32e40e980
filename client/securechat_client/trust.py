"""Clients verify, not trust: every certificate is checked against the CA, revocation
is checked, and each contact's signing key is pinned on first sight."""

import base64
import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtensionOID, NameOID

from client.securechat_client.errors import TrustError
from cryptokit.fingerprints import fingerprint
from cryptokit.keys import spki_der


class TrustStore:
    def __init__(self, ca_certificates: list[bytes], *, pins_path: Path | None = None) -> None:
        self.authorities = [x509.load_der_x509_certificate(der) for der in ca_certificates]
        self.revoked: set[str] = set()
        self.pins_path = pins_path
        self.pins: dict[str, str] = (
            json.loads(pins_path.read_text()) if pins_path and pins_path.exists() else {}
        )
        self.accepted_changes: dict[str, str] = {}
        self.cache: dict[str, tuple[dict, x509.Certificate]] = {}

    @classmethod
    def from_authority(cls, published: dict, **kwargs) -> "TrustStore":
        """Build from GET /api/keys/ca/."""
        return cls([base64.b64decode(c) for c in published["certificates"]], **kwargs)

    def verify_certificate(
        self, der: bytes, *, username: str | None, kind: str
    ) -> x509.Certificate:
        """The certificate, if one of our CAs issued it for `username` and `kind`."""
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise TrustError("untrusted_certificate", "Not a certificate.") from None
        if not any(self._issued_by(certificate, ca) for ca in self.authorities):
            raise TrustError("untrusted_certificate", "Not issued by the SecureChat CA.")
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise TrustError("untrusted_certificate", "The certificate is not valid now.")
        usage = certificate.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
        wanted = usage.key_encipherment if kind == "encryption" else usage.digital_signature
        if not wanted:
            raise TrustError("untrusted_certificate", f"The certificate is not for {kind}.")
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if username is not None and (not names or names[0].value != username):
            raise TrustError("untrusted_certificate", f"The certificate is not {username}'s.")
        return certificate

    @staticmethod
    def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
        try:
            certificate.verify_directly_issued_by(ca)
            return True
        except (ValueError, TypeError, InvalidSignature):
            return False

    async def refresh_revocations(self, http) -> None:
        listed = await http.get_json("/api/keys/revocations/")
        self.revoked = {entry["serial"] for entry in listed["revoked"]}

    def check_not_revoked(self, serial: str) -> None:
        if serial in self.revoked:
            raise TrustError("certificate_revoked", f"Certificate {serial} is revoked.")

    async def certificate(self, http, serial: str, *, username: str | None, kind: str):
        """(certificate object, x509) for a serial, verified before it is cached."""
        if serial not in self.cache:
            body = await http.get_json(f"/api/keys/certificates/{serial}/")
            verified = self.verify_certificate(
                base64.b64decode(body["certificate"]), username=username, kind=kind
            )
            if f"{verified.serial_number:x}" != serial:
                raise TrustError(
                    "untrusted_certificate", "The server answered another certificate."
                )
            self.cache[serial] = (body, verified)
        body, verified = self.cache[serial]
        if body["status"] == "revoked":
            self.revoked.add(serial)
        self.check_not_revoked(serial)
        return body, verified

    def pin(self, username: str, spki: bytes) -> None:
        """Trust on first use; a changed key is refused until accept_key_change()."""
        new = fingerprint(spki)
        old = self.pins.get(username)
        if old is not None and old != new and self.accepted_changes.get(username) != new:
            raise TrustError("key_changed", f"{username}'s key changed from {old} to {new}.")
        self.pins[username] = new
        if self.pins_path:
            self.pins_path.write_text(json.dumps(self.pins, indent=2))

    def accept_key_change(self, username: str, spki: bytes) -> None:
        """The user compared safety numbers and accepts the new key."""
        self.accepted_changes[username] = fingerprint(spki)


def public_spki(certificate: x509.Certificate) -> bytes:
    return spki_der(certificate.public_key())
