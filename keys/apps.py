from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"

    def ready(self) -> None:
        from keys import checks  # noqa: F401  (registers the PKI system check)
