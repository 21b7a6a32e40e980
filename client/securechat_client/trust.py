"""Clients verify, not trust: every certificate is checked against the CA (profile:
protocol.md §2.2), revocation is checked, and each contact's signing and encryption keys
are pinned on first sight and consulted on every verification."""

import base64
import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtensionOID, NameOID

from cryptokit.fingerprints import fingerprint
from cryptokit.keys import spki_der

from .errors import KeyChanged, TrustError


class TrustStore:
    def __init__(self, ca_certificates: list[bytes], *, pins_path: Path | None = None) -> None:
        self.authorities = [x509.load_der_x509_certificate(der) for der in ca_certificates]
        self.revoked: set[str] = set()
        self.pins_path = pins_path
        stored = json.loads(pins_path.read_text()) if pins_path and pins_path.exists() else {}
        # username -> {"signing": fingerprint, "encryption": fingerprint}; an older file
        # held the signing fingerprint alone.
        self.pins: dict[str, dict[str, str]] = {
            user: pin if isinstance(pin, dict) else {"signing": pin} for user, pin in stored.items()
        }
        self.accepted_changes: dict[tuple[str, str], str] = {}
        self.cache: dict[str, tuple[dict, x509.Certificate]] = {}

    @classmethod
    def from_authority(cls, published: dict, **kwargs) -> "TrustStore":
        """Build from GET /api/keys/ca/."""
        return cls([base64.b64decode(c) for c in published["certificates"]], **kwargs)

    def verify_certificate(
        self, der: bytes, *, username: str | None, kind: str, at: dt.datetime | None = None
    ) -> x509.Certificate:
        """The certificate, if one of our CAs issued it for `username` and `kind`, valid at
        `at` (now by default; the time a record or message was stored, to verify history
        signed before a certificate expired)."""
        certificate = self._issued(der)
        check_profile(certificate, username=username, kind=kind)
        check_validity(certificate, at)
        return certificate

    def _issued(self, der: bytes) -> x509.Certificate:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise TrustError("untrusted_certificate", "Not a certificate.") from None
        if not any(self._issued_by(certificate, ca) for ca in self.authorities):
            raise TrustError("untrusted_certificate", "Not issued by the SecureChat CA.")
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

    async def certificate(
        self, http, serial: str, *, username: str | None, kind: str, at: dt.datetime | None = None
    ):
        """(certificate object, x509) for a serial, verified before it is cached; its
        validity is checked at `at` on every call."""
        if serial not in self.cache:
            body = await http.get_json(f"/api/keys/certificates/{serial}/")
            verified = self._issued(base64.b64decode(body["certificate"]))
            if f"{verified.serial_number:x}" != serial:
                raise TrustError(
                    "untrusted_certificate", "The server answered another certificate."
                )
            self.cache[serial] = (body, verified)
        body, verified = self.cache[serial]
        check_profile(verified, username=username, kind=kind)
        check_validity(verified, at)
        if body["status"] == "revoked":
            self.revoked.add(serial)
        self.check_not_revoked(serial)
        return body, verified

    def check_pin(self, username: str, kind: str, spki: bytes) -> None:
        """Trust on first use: pin `username`'s `kind` key the first time it is seen; a
        different key is `key_changed` (with both fingerprints) until the user accepts it
        with accept_key_change() after comparing safety numbers."""
        new = fingerprint(spki)
        pinned = self.pins.setdefault(username, {})
        old = pinned.get(kind)
        if old is not None and old != new:
            if self.accepted_changes.get((username, kind)) != new:
                raise KeyChanged(username, kind, old, new)
        if old != new:
            pinned[kind] = new
            if self.pins_path:
                self.pins_path.write_text(json.dumps(self.pins, indent=2))

    def pin(self, username: str, spki: bytes) -> None:
        self.check_pin(username, "signing", spki)

    def accept_key_change(self, username: str, spki: bytes, kind: str = "signing") -> None:
        """The user compared safety numbers and accepts the new key."""
        self.accepted_changes[(username, kind)] = fingerprint(spki)


def check_profile(certificate: x509.Certificate, *, username: str | None, kind: str) -> None:
    """Key usage for `kind` and the subject's common name (protocol.md §2.2)."""
    try:
        usage = certificate.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        raise TrustError("untrusted_certificate", "The certificate has no key usage.") from None
    wanted = usage.key_encipherment if kind == "encryption" else usage.digital_signature
    if not wanted or (kind != "encryption" and usage.key_encipherment):
        raise TrustError("untrusted_certificate", f"The certificate is not for {kind}.")
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if username is not None and (len(names) != 1 or names[0].value != username):
        raise TrustError("untrusted_certificate", f"The certificate is not {username}'s.")


def check_validity(certificate: x509.Certificate, at: dt.datetime | None) -> None:
    now = dt.datetime.now(dt.UTC)
    at = now if at is None else min(at, now)  # a claimed time never lies in the future
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        raise TrustError("untrusted_certificate", "The certificate was not valid then.")


def public_spki(certificate: x509.Certificate) -> bytes:
    return spki_der(certificate.public_key())
