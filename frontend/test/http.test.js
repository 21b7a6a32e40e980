// net/http.js against a real HTTP server on the loopback interface.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { HttpError, createHttp, csrfTokenFromCookie } from "../src/net/http.js";

let server;
let baseUrl;
const seen = [];

before(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method, url: request.url, headers: request.headers, body });
      const reply = (status, value, type = "application/json") => {
        response.writeHead(status, { "Content-Type": type });
        response.end(typeof value === "string" ? value : JSON.stringify(value));
      };
      if (request.url === "/api/ok/") return reply(200, { echo: body ? JSON.parse(body) : null });
      if (request.url === "/api/created/") return reply(201, { id: 7 });
      if (request.url === "/api/refused/") return reply(409, { code: "backup_version_conflict", message: "Expected version 3." });
      if (request.url === "/api/html-error/") return reply(403, "<h1>CSRF verification failed</h1>", "text/html");
      return reply(404, { code: "not_found", message: "No such thing." });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(() => new Promise((resolve) => server.close(resolve)));

test("the csrftoken cookie is read among others, and missing means empty", () => {
  assert.equal(csrfTokenFromCookie("sessionid=abc; csrftoken=Tok%2Ben; theme=dark"), "Tok+en");
  assert.equal(csrfTokenFromCookie("xcsrftoken=nope; sessionid=abc"), "");
  assert.equal(csrfTokenFromCookie(""), "");
});

test("GET sends no CSRF header and returns the JSON body", async () => {
  const http = createHttp({ csrfToken: "t0ken", baseUrl });
  assert.deepEqual(await http.getJson("/api/ok/"), { echo: null });
  const request = seen.at(-1);
  assert.equal(request.method, "GET");
  assert.equal(request.headers["x-csrftoken"], undefined);
});

test("POST and PUT send JSON bodies with the X-CSRFToken header", async () => {
  const http = createHttp({ csrfToken: () => "fresh-token", baseUrl });
  assert.deepEqual(await http.postJson("/api/ok/", { a: 1 }), { echo: { a: 1 } });
  let request = seen.at(-1);
  assert.equal(request.method, "POST");
  assert.equal(request.headers["x-csrftoken"], "fresh-token");
  assert.equal(request.headers["content-type"], "application/json");
  assert.deepEqual(await http.putJson("/api/created/", { blob: "AA==", version: 1 }), { id: 7 });
  request = seen.at(-1);
  assert.equal(request.method, "PUT");
  assert.deepEqual(JSON.parse(request.body), { blob: "AA==", version: 1 });
});

test("a refusal throws HttpError with the server's status, code and message", async () => {
  const http = createHttp({ csrfToken: "t", baseUrl });
  await assert.rejects(http.putJson("/api/refused/", {}), (error) => {
    assert.ok(error instanceof HttpError);
    assert.equal(error.status, 409);
    assert.equal(error.code, "backup_version_conflict");
    assert.equal(error.message, "Expected version 3.");
    return true;
  });
});

test("an error page that is not JSON still gives an HttpError with its status", async () => {
  const http = createHttp({ csrfToken: "t", baseUrl });
  await assert.rejects(http.postJson("/api/html-error/", {}), { name: "HttpError", status: 403, code: "http_error" });
});

test("an unreachable server is a network_error, not a crash", async () => {
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  const http = createHttp({ csrfToken: "t", baseUrl: `http://127.0.0.1:${port}` });
  await assert.rejects(http.getJson("/api/ok/"), { name: "HttpError", status: 0, code: "network_error" });
});

test("only same-origin paths are accepted", async () => {
  const http = createHttp({ csrfToken: "t", baseUrl });
  await assert.rejects(http.getJson("https://elsewhere.example/api/"), TypeError);
  await assert.rejects(http.postJson("//elsewhere.example/api/", {}), TypeError);
});
