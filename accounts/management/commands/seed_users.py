from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.seeding import SeedError, SeedRow, random_rows, read_seed_file, seed_users


class Command(BaseCommand):
    help = "Create users from arguments, a CSV/JSON file, or --random N; existing ones are skipped."

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", help="usernames; passwords are generated")
        parser.add_argument(
            "--file", type=Path, help="CSV or JSON: username, display_name, password, is_staff"
        )
        parser.add_argument(
            "--random", type=int, default=0, metavar="N", help="create N demo users"
        )
        parser.add_argument("--staff", action="store_true", help="make the named users staff")

    def handle(self, *args, usernames, file, random, staff, **options):
        try:
            rows = [
                SeedRow(username=name, display_name=name.title(), is_staff=staff)
                for name in usernames
            ]
            rows += read_seed_file(file) if file else []
            rows += random_rows(random) if random else []
            result = seed_users(rows)
        except (SeedError, OSError, ValueError) as exc:
            problems = getattr(exc, "problems", [str(exc)])
            raise CommandError("Nothing was created:\n  " + "\n  ".join(problems)) from None
        for username, password in result.created:
            shown = f" password: {password}" if password else " (password from the input)"
            self.stdout.write(f"created {username}{shown}")
        for username in result.skipped:
            self.stdout.write(f"skipped {username} (already exists)")
