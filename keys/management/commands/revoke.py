from django.core.management.base import CommandError

from accounts.management.commands._base import OperatorCommand, get_user, require_reason
from keys.services import revoke_user_keys


class Command(OperatorCommand):
    help = (
        "Revoke a user's active key pair, as the admin's 'Revoke selected certificates' "
        "action does: refused from the next request on, their conversations re-keyed "
        "without them, peers told; audited with the reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="kept in the audit log (≤ 200)")

    def handle(self, *args, username, reason, **options):
        user = get_user(username)
        reason = require_reason(reason)
        serials = revoke_user_keys(user, reason=reason, by=None, via="command")
        if not serials:
            raise CommandError(f"{username} has no active keys to revoke.")
        self.stdout.write(
            f"revoked {len(serials)} certificate(s) of {username}: " + ", ".join(serials)
        )
