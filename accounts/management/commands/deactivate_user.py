from accounts.lifecycle import deactivate_user
from accounts.management.commands._base import UserActionCommand


class Command(UserActionCommand):
    help = (
        "Deactivate a user: logins and open sockets end, the active key pair is revoked "
        "(conversations re-key without them); certificates, memberships and messages are "
        "kept for the others' history. Audited with the reason."
    )

    def act(self, user, reason):
        username = user.username
        result = deactivate_user(user, reason=reason, by=None, via="command")
        if not result.changed:
            self.stdout.write(f"{username} was already deactivated and holds no active keys.")
            return
        revoked = ", ".join(result.revoked) or "none were active"
        self.stdout.write(f"deactivated {username}; revoked certificates: {revoked}")
