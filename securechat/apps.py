from django.apps import AppConfig


class SecureChatConfig(AppConfig):
    name = "securechat"
    verbose_name = "SecureChat"

    def ready(self) -> None:
        from securechat import checks  # noqa: F401  (registers the system checks)
