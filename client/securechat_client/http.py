"""Session login and JSON calls over HTTP, with Django's CSRF conventions."""

import re

import httpx

from .errors import ProtocolError

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class HttpSession:
    def __init__(self, base_url: str, other_urls: list[str] = ()) -> None:
        self.base_url = base_url.rstrip("/")
        # Workers of the same server: a call that cannot reach one tries the next.
        self.urls = [self.base_url, *(url.rstrip("/") for url in other_urls)]
        self.client = httpx.AsyncClient(timeout=30)

    async def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        for index, url in enumerate(self.urls):
            try:
                return await self.client.request(method, url + path, **kwargs)
            except httpx.TransportError:
                if index == len(self.urls) - 1:
                    raise
        raise AssertionError("unreachable")

    async def login(self, username: str, password: str) -> None:
        page = await self._send("GET", "/accounts/login/")
        token = CSRF_FIELD.search(page.text)
        response = await self._send(
            "POST",
            "/accounts/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            headers={"Referer": f"{self.base_url}/accounts/login/"},
        )
        if response.status_code != 302:
            raise ProtocolError("login_failed", f"Login of {username} was refused.")

    def _headers(self) -> dict[str, str]:
        return {
            "X-CSRFToken": self.client.cookies.get("csrftoken", ""),
            "Referer": f"{self.base_url}/",
        }

    async def _json(self, response: httpx.Response) -> dict:
        body = response.json()
        if response.status_code >= 400:
            raise ProtocolError(body.get("code", "http_error"), body.get("message", ""))
        return body

    async def get_json(self, path: str) -> dict:
        return await self._json(await self._send("GET", path))

    async def post_json(self, path: str, body: dict) -> dict:
        return await self._json(await self._send("POST", path, json=body, headers=self._headers()))

    async def put_json(self, path: str, body: dict) -> dict:
        return await self._json(await self._send("PUT", path, json=body, headers=self._headers()))

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.client.cookies.items())

    async def close(self) -> None:
        await self.client.aclose()
