from pathlib import Path

from django.core.management.base import CommandError

from accounts.management.commands._base import OperatorCommand
from accounts.seeding import SeedError, SeedRow, random_rows, read_seed_file, seed_users


class Command(OperatorCommand):
    help = (
        "Create users from arguments, a CSV/JSON file, or --random N; existing ones are "
        "skipped. --staff makes the named users operators (they can open the admin, see "
        "everything, revoke certificates); --superuser gives every permission."
    )

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", help="usernames; passwords are generated")
        parser.add_argument(
            "--file", type=Path, help="CSV or JSON: username, display_name, password, is_staff"
        )
        parser.add_argument("--random", type=int, metavar="N", help="create N demo users")
        role = parser.add_mutually_exclusive_group()
        role.add_argument("--staff", action="store_true", help="the named users become operators")
        role.add_argument(
            "--superuser", action="store_true", help="the named users become superusers"
        )

    def handle(self, *args, usernames, file, random, staff, superuser, **options):
        self._check_input(usernames, file, random, staff or superuser)
        try:
            rows = [
                SeedRow(
                    username=name,
                    display_name=name.title(),
                    is_staff=staff,
                    is_superuser=superuser,
                )
                for name in usernames
            ]
            rows += read_seed_file(file) if file else []
            rows += random_rows(random) if random is not None else []
            result = seed_users(rows)
        except SeedError as exc:
            raise CommandError("Nothing was created: " + "; ".join(exc.problems)) from None
        for username, password in result.created:
            shown = f" password: {password}" if password else " (password from the input)"
            self.stdout.write(f"created {username}{shown}")
        for username in result.skipped:
            self.stdout.write(f"skipped {username} (already exists)")

    @staticmethod
    def _check_input(usernames: list[str], file: Path | None, random: int | None, role: bool):
        if not usernames and file is None and random is None:
            raise CommandError(
                "Nothing to create: name users (seed_users alice bob), "
                "or give --file users.csv or --random N."
            )
        if random is not None and random < 1:
            raise CommandError(f"--random needs a number of users of at least 1, not {random}.")
        if role and not usernames:
            raise CommandError(
                "--staff and --superuser apply to users named on the command line; "
                "in a file, use the is_staff column."
            )
