from django.core.management.base import CommandError

from accounts.management.commands._base import UserActionCommand
from keys.services import revoke_user_keys


class Command(UserActionCommand):
    help = (
        "Revoke a user's active key pair, as the admin's 'Revoke selected certificates' "
        "action does: refused from the next request on, their conversations re-keyed "
        "without them, peers told; audited with the reason."
    )

    def act(self, user, reason):
        username = user.username
        serials = revoke_user_keys(user, reason=reason, by=None, via="command")
        if not serials:
            raise CommandError(f"{username} has no active keys to revoke.")
        self.stdout.write(
            f"revoked {len(serials)} certificate(s) of {username}: " + ", ".join(serials)
        )
