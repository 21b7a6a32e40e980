"""System checks with stable ids for configurations that would be silently insecure."""

from django.conf import settings
from django.core.checks import Error, Tags, register

ARGON2 = "django.contrib.auth.hashers.Argon2PasswordHasher"
IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"


@register(Tags.security)
def check_password_hasher(app_configs, **kwargs) -> list[Error]:
    if settings.PASSWORD_HASHERS[:1] != [ARGON2]:
        return [
            Error(
                "Argon2PasswordHasher must be the first entry of PASSWORD_HASHERS.",
                hint="New passwords get the first hasher; SecureChat requires argon2id.",
                id="securechat.E001",
            )
        ]
    return []


@register(Tags.compatibility)
def check_channel_layer(app_configs, **kwargs) -> list[Error]:
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if not settings.DEBUG and backend == IN_MEMORY_LAYER:
        return [
            Error(
                "The in-memory channel layer is configured while DEBUG is off.",
                hint="It works in one process only: several daphne workers would not see "
                "each other's messages. Set REDIS_URL and use channels_redis.",
                id="securechat.E002",
            )
        ]
    return []
