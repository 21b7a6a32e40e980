"""Renew this device's certificates before they expire.

A renewal is a new proof of possession for the same keys: the server issues new
certificates, supersedes the old pair and re-keys nothing, and contacts' pins (on the key,
not the certificate) still hold.
"""

import datetime as dt
from urllib.parse import quote

from .keystore import KeyPair


def renewal_due(published: dict, keys: KeyPair, *, within_days: int, now: dt.datetime) -> bool:
    """`published` is GET /api/keys/users/<me>/. Due when a certificate of mine ends
    within `within_days`, or is not the one the server lists as active (expired ones are
    not listed; keys loaded from disk carry no serials)."""
    horizon = now + dt.timedelta(days=within_days)
    for kind, serial in (("signing", keys.signing_serial), ("encryption", keys.encryption_serial)):
        current = published.get(kind)
        if current is None or current["serial"] != serial:
            return True
        if dt.datetime.fromisoformat(current["not_after"]) <= horizon:
            return True
    return False


async def renew_if_due(client, *, within_days: int = 30) -> bool:
    """Renew `client`'s (a ChatClient's) certificates when due; True if it did."""
    if client.keys is None:
        raise ValueError("This client has no keys to renew: register or load them first.")
    published = await client.http.get_json(f"/api/keys/users/{quote(client.username)}/")
    now = dt.datetime.now(dt.UTC)
    if not renewal_due(published, client.keys, within_days=within_days, now=now):
        return False
    await client.certify(client.keys)
    return True
