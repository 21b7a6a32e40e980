"""In the repository the library answers to its installed name and to its older one,
as one set of modules: an exception raised under one name is caught under the other."""

import importlib


def test_both_names_are_the_same_modules():
    import securechat_client.errors as errors

    import client.securechat_client.errors as old_errors

    assert old_errors is errors
    assert old_errors.TrustError is errors.TrustError
    for name in ("client", "connection", "conversation", "http", "keystore", "renewal", "trust"):
        old = importlib.import_module(f"client.securechat_client.{name}")
        assert old is importlib.import_module(f"securechat_client.{name}"), name
