from accounts.lifecycle import deactivate_user
from accounts.management.commands._base import OperatorCommand, get_user, require_reason


class Command(OperatorCommand):
    help = (
        "Deactivate a user: logins and open sockets end, the active key pair is revoked "
        "(conversations re-key without them); certificates, memberships and messages are "
        "kept for the others' history. Audited with the reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="kept in the audit log (≤ 200)")

    def handle(self, *args, username, reason, **options):
        user = get_user(username)
        reason = require_reason(reason)
        result = deactivate_user(user, reason=reason, by=None, via="command")
        if not result.changed:
            self.stdout.write(f"{username} was already deactivated and holds no active keys.")
            return
        revoked = ", ".join(result.revoked) or "none were active"
        self.stdout.write(f"deactivated {username}; revoked certificates: {revoked}")
