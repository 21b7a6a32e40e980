from securechat.checks import check_channel_layer, check_password_hasher


def test_argon2_not_first_is_error_e001(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    assert [e.id for e in check_password_hasher(None)] == ["securechat.E001"]


def test_argon2_first_passes(settings):
    assert check_password_hasher(None) == []


def test_in_memory_channel_layer_without_debug_is_error_e002(settings):
    settings.DEBUG = False
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert [e.id for e in check_channel_layer(None)] == ["securechat.E002"]


def test_in_memory_channel_layer_is_allowed_in_debug(settings):
    settings.DEBUG = True
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert check_channel_layer(None) == []
