from django.core.management.base import CommandError

from accounts.management.commands._base import OperatorCommand
from keys.ca import PkiNotReady, initialize_pki


class Command(OperatorCommand):
    help = (
        "Create the server CA, the server signing key and DSA parameters if missing; "
        "renew a server signing key that expires within CERTIFICATE_RENEW_DAYS."
    )
    requires_system_checks = []  # the PKI check would refuse to run before the PKI exists

    def add_arguments(self, parser):
        parser.add_argument(
            "--rotate", action="store_true", help="new CA; the old one keeps verifying"
        )

    def handle(self, *args, rotate, **options):
        try:
            done = initialize_pki(rotate=rotate)
        except PkiNotReady as exc:
            raise CommandError(str(exc)) from None
        for line in done or ["PKI already initialized; nothing to do."]:
            self.stdout.write(line)
