from django.core.management.base import CommandError

from accounts.lifecycle import AccountInUse, delete_user
from accounts.management.commands._base import UserActionCommand


class Command(UserActionCommand):
    help = (
        "Delete an account that never took part in a conversation (with its certificates, "
        "key backup and invitations). Anyone else is deactivated instead "
        "(manage.py deactivate_user), so other members' history stays whole."
    )

    def act(self, user, reason):
        username = user.username
        try:
            delete_user(user, reason=reason, by=None, via="command")
        except AccountInUse as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"deleted {username}")
