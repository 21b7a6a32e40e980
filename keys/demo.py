"""Demo key pairs made outside the server's trust (as a client would) and certified
through the same proof-of-possession service, for the terminal client and the benchmark."""

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from accounts.models import User
from cryptokit.keys import spki_der
from cryptokit.pop import answer_challenge
from cryptokit.signing import generate_encryption_key, generate_signing_key
from keys.ca import current_dsa_parameters
from keys.models import Certificate
from keys.services import Registration, create_challenge, register_keys

DEMO_ALGORITHMS = ["ed25519", "rsa-pss", "dsa", "ecdsa-p256"]


def certify_new_keys(user: User, algorithm: str, *, rsa_bits: int = 3072):
    """Generate a key pair for `user` and certify it by answering a real challenge.
    Returns (signing private key, encryption private key, signing cert, encryption cert)."""
    parameters = current_dsa_parameters() if algorithm == "dsa" else None
    signing_key = generate_signing_key(algorithm, dsa_parameters=parameters, rsa_bits=rsa_bits)
    encryption_key = generate_encryption_key(rsa_bits)
    registration = certify_keys(user, signing_key, encryption_key)
    return signing_key, encryption_key, registration.signing, registration.encryption


def certify_keys(user: User, signing_key, encryption_key) -> Registration:
    """Certify `user`'s existing private keys by answering a real challenge (with the
    keys of the user's current pair, a renewal)."""
    signing_spki = spki_der(signing_key.public_key())
    encryption_spki = spki_der(encryption_key.public_key())
    challenge = create_challenge(user, signing_spki, encryption_spki)
    signature, secret = answer_challenge(
        username=user.username,
        nonce=challenge.nonce,
        encrypted_secret=challenge.encrypted_secret,
        signing_key=signing_key,
        encryption_key=encryption_key,
    )
    return register_keys(
        user,
        challenge_id=challenge.id,
        signing_spki=signing_spki,
        encryption_spki=encryption_spki,
        signature=signature,
        secret=secret,
    )


def issue_demo_keys(usernames: list[str], out_dir: Path, *, force: bool = False) -> list[str]:
    """Give each user without active keys (or every user, with force) a new pair; the
    private keys go to out_dir/<username>/. Returns one line per user."""
    report = []
    for index, username in enumerate(usernames):
        user = User.objects.get(username=username)
        has_keys = Certificate.objects.filter(owner=user, status=Certificate.Status.ACTIVE).exists()
        if has_keys and not force:
            report.append(f"skipped {username} (has active keys)")
            continue
        algorithm = DEMO_ALGORITHMS[index % len(DEMO_ALGORITHMS)]
        signing_key, encryption_key, signing_cert, encryption_cert = certify_new_keys(
            user, algorithm
        )
        # The key files the Python client reads (securechat_client/keystore.py), in
        # plaintext: demo credentials, stated in the README.
        _write_private_key(out_dir / username / "signing.pem", signing_key)
        _write_private_key(out_dir / username / "encryption.pem", encryption_key)
        report.append(
            f"certified {username}: {algorithm} signing {signing_cert.serial[:12]}…, "
            f"rsa-oaep encryption {encryption_cert.serial[:12]}…"
        )
    return report


def _write_private_key(path: Path, key) -> None:
    """PKCS#8 PEM, unencrypted, readable by its owner only from the first byte."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
