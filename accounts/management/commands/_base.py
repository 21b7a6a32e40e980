"""What every operator command here shares: a bad input ends in one line and a non-zero
exit, never a traceback or a usage block.

handle() raises CommandError with one sentence (Django prints `CommandError: ...`, exit 1);
argparse's own errors (a missing or malformed option) print only their
`manage.py <command>: error: ...` line, exit 2: the usage block is left to --help.
(A module whose name starts with "_" is not a command.)
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User


class OperatorCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.print_usage = lambda file=None: None
        return parser


def get_user(username: str) -> User:
    """The user named `username`, or a CommandError naming it."""
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return user


def require_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise CommandError("--reason must not be empty: the audit log keeps it.")
    if len(reason) > 200:
        raise CommandError(f"--reason is {len(reason)} characters; at most 200.")
    return reason


class UserActionCommand(OperatorCommand):
    """`manage.py <command> USERNAME --reason R`: an audited action on one user; subclasses
    implement act() and report what they did."""

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="kept in the audit log (≤ 200)")

    def handle(self, *args, username: str, reason: str, **options) -> None:
        self.act(get_user(username), require_reason(reason))

    def act(self, user: User, reason: str) -> None:
        raise NotImplementedError
