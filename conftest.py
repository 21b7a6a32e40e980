"""Session-wide real services: a dedicated redis-server for the whole test run."""

import pytest

from testing.processes import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server of our own; a test run fails, never skips, when it cannot start."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    except RuntimeError as exc:
        pytest.fail(f"could not start the test redis-server: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _settings_use_test_redis(redis_server):
    """Point the cache and the channel layer at the test Redis for in-process tests."""
    from asgiref.local import Local
    from channels.layers import channel_layers
    from django.conf import settings
    from django.core.cache import caches

    settings.REDIS_URL = redis_server.url
    settings.CACHES["default"]["LOCATION"] = redis_server.url
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = redis_server.url
    caches.close_all()
    caches._connections = Local()  # drop cache clients created before the switch
    channel_layers.backends = {}
    yield


@pytest.fixture(autouse=True)
def _empty_redis_between_tests(redis_server):
    """Each test starts with an empty Redis so throttle counters do not leak."""
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    yield


@pytest.fixture(scope="session")
def dsa_parameters():
    """DSA-2048/256 domain parameters, generated once: it takes seconds."""
    from cryptography.hazmat.primitives.asymmetric import dsa

    return dsa.generate_parameters(key_size=2048)


@pytest.fixture
def pki(db, dsa_parameters):
    """A fresh CA, server signing key and DSA parameters in the test database."""
    from keys.ca import active_ca, initialize_pki

    initialize_pki(dsa_parameters=dsa_parameters)
    return active_ca()


@pytest.fixture
def users(db):
    """alice and bob may do things; charlie is the one who must be refused."""
    from accounts.models import User

    return {
        name: User.objects.create_user(name, password=None, display_name=name.title())
        for name in ("alice", "bob", "charlie")
    }


@pytest.fixture(scope="module")
def browser():
    """Headless /usr/bin/chromium through Playwright, for one test module: Playwright's sync
    API keeps an event loop marked as running while it is started, which would break the
    asyncio tests of every later module (testing/browser.py)."""
    from playwright.sync_api import sync_playwright

    from testing.browser import launch_chromium

    with sync_playwright() as playwright:
        try:
            chromium = launch_chromium(playwright)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield chromium
        chromium.close()


@pytest.fixture
def browser_pages(browser):
    """`browser_pages.new_page(base_url)` gives a page in a fresh context; the test fails
    at teardown if any of its pages recorded a CSP violation or a page error."""
    from testing.browser import BrowserPages

    pages = BrowserPages(browser)
    yield pages
    pages.close()


@pytest.fixture(scope="module")
def production_stack(tmp_path_factory):
    """The whole server as production runs it (DEBUG=0, static files served by daphne
    itself) with its own redis-server, SQLite database and var dir; alice is seeded."""
    from testing.browser import frontend_manifest, production_settings
    from testing.processes import ChatStack, RedisServer

    try:
        frontend_manifest()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    redis_server = RedisServer(tmp_path_factory.mktemp("stack-redis"))
    var_dir = tmp_path_factory.mktemp("stack-var")
    try:
        stack = ChatStack(var_dir, redis_server.url, **production_settings())
    except BaseException:
        redis_server.stop()
        raise
    try:
        stack.seed("alice")
        yield stack
    finally:
        stack.stop()
        redis_server.stop()
