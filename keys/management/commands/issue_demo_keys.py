from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from accounts.management.commands._base import OperatorCommand
from accounts.models import User
from keys.ca import PkiNotReady
from keys.demo import issue_demo_keys
from keys.services import PkiError


class Command(OperatorCommand):
    help = "Generate and certify key pairs for users, writing the private keys locally."

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", help="default: alice bob carol")
        parser.add_argument("--out", type=Path, default=None, help="default: var/demo-keys")
        parser.add_argument("--force", action="store_true", help="rotate users who have keys")

    def handle(self, *args, usernames, out, force, **options):
        usernames = usernames or ["alice", "bob", "carol"]
        known = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
        missing = [name for name in usernames if name not in known]
        if missing:
            raise CommandError(
                f"No user named {', '.join(missing)}: create them first "
                f"(manage.py seed_users {' '.join(missing)})."
            )
        out = out or Path(settings.VAR_DIR) / "demo-keys"
        try:
            report = issue_demo_keys(usernames, out, force=force)
        except (PkiNotReady, PkiError, OSError) as exc:
            raise CommandError(str(exc)) from None
        for line in report:
            self.stdout.write(line)
        self.stdout.write(f"private keys under {out}")
