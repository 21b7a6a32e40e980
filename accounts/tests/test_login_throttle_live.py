"""Bursts of parallel logins against a real daphne (each request on its own thread, as
Django runs sync views under ASGI) with its own Redis: the site login and the admin login
check at most the limit, then refuse even the right password. Checks are counted from the
server's log: it runs with a hasher that logs each argon2 verification (counting_settings)."""

import asyncio
import re

import httpx
import pytest
import redis

from testing.processes import ChatStack, RedisServer, manage

WRONG = "wrong-password-Zq7"
BURST = 100


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    redis_server = RedisServer(tmp_path_factory.mktemp("throttle-redis"))
    try:
        stack = ChatStack(
            tmp_path_factory.mktemp("throttle-var"),
            redis_server.url,
            DJANGO_SETTINGS_MODULE="accounts.tests.counting_settings",
        )
    except BaseException:
        redis_server.stop()
        raise
    try:
        script = (
            "from accounts.models import User\n"
            f"User.objects.create_user('alice', password={stack.password('alice')!r})\n"
            f"User.objects.create_user('root', password={stack.password('root')!r},"
            " is_staff=True, is_superuser=True)\n"
        )
        manage(stack.env, "shell", "-c", script)
        yield stack, redis_server
    finally:
        stack.stop()
        redis_server.stop()


@pytest.fixture
def stack(live):
    stack, redis_server = live
    redis.Redis.from_url(redis_server.url).flushdb()
    return stack


def password_checks(stack: ChatStack) -> int:
    return len(re.findall(r"argon2\.verify", stack.workers[0].log()))


def failed_lines(stack: ChatStack) -> int:
    return len(re.findall(r"login\.failed ", stack.workers[0].log()))


async def form_post(http: httpx.AsyncClient, path: str, username: str, password: str):
    return await http.post(
        path,
        data={
            "username": username,
            "password": password,
            "next": "/admin/",
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
        },
        headers={"Referer": f"{http.base_url}{path}"},
    )


async def burst(stack: ChatStack, path: str, username: str) -> list[int]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=120) as http:
        await http.get(path)  # the CSRF cookie, reused by every attempt
        responses = await asyncio.gather(
            *(form_post(http, path, username, WRONG) for _ in range(BURST))
        )
    return [response.status_code for response in responses]


async def right_password(stack: ChatStack, path: str, username: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        await http.get(path)
        return await form_post(http, path, username, stack.password(username))


@pytest.mark.parametrize(
    ("path", "username"), [("/accounts/login/", "alice"), ("/admin/login/", "root")]
)
async def test_a_burst_of_100_parallel_wrong_passwords_checks_at_most_the_limit(
    stack, path, username
):
    checks, failures = password_checks(stack), failed_lines(stack)
    statuses = await burst(stack, path, username)
    assert statuses == [200] * BURST  # every one answered with the form, none let in
    assert password_checks(stack) - checks == 5
    assert failed_lines(stack) - failures == 5  # one line per checked failure
    refused = await right_password(stack, path, username)
    assert refused.status_code == 200
    assert "Too many failed login attempts" in refused.text
    assert password_checks(stack) - checks == 5
    assert WRONG not in stack.workers[0].log()


async def test_30_sequential_wrong_admin_passwords_then_the_right_one_is_refused(stack):
    checks = password_checks(stack)
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        await http.get("/admin/login/")
        for _ in range(30):
            response = await form_post(http, "/admin/login/", "root", WRONG)
            assert response.status_code == 200
        response = await form_post(http, "/admin/login/", "root", stack.password("root"))
    assert response.status_code == 200 and "Too many failed login attempts" in response.text
    assert password_checks(stack) - checks == 5


async def test_the_right_password_logs_in_when_not_throttled(stack):
    response = await right_password(stack, "/admin/login/", "root")
    assert response.status_code == 302 and response.headers["location"] == "/admin/"
