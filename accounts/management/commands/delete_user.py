from django.core.management.base import CommandError

from accounts.lifecycle import AccountInUse, delete_user
from accounts.management.commands._base import OperatorCommand, get_user, require_reason


class Command(OperatorCommand):
    help = (
        "Delete an account that never took part in a conversation (with its certificates, "
        "key backup and invitations). Anyone else is deactivated instead "
        "(manage.py deactivate_user), so other members' history stays whole."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="kept in the audit log (≤ 200)")

    def handle(self, *args, username, reason, **options):
        user = get_user(username)
        reason = require_reason(reason)
        try:
            delete_user(user, reason=reason, by=None, via="command")
        except AccountInUse as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"deleted {username}")
