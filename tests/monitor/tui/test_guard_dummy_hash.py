"""A sign-in under an unknown name makes the dummy hash (scrypt, the first time) in the worker
thread that checks passwords, never on the event loop that serves every other tab."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.tui import serve_guard, users
from monitor.tui.identity import Role
from monitor.tui.serve_guard import Guard
from monitor.tui.users import UsersFile, hash_password


async def test_the_dummy_hash_of_an_unknown_name_is_made_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tui-users.toml"
    account = users.Account("alice", Role.OPERATOR, hash_password("alice password", n=16, r=1, p=1))
    users.write_users(path, {"alice": account})
    made_on: list[threading.Thread] = []
    real = users.dummy_hash

    def dummy_hash(like: str | None = None) -> str:
        made_on.append(threading.current_thread())
        return real(like)

    monkeypatch.setattr(serve_guard, "dummy_hash", dummy_hash)
    guard = Guard(None, users=UsersFile(path))

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[guard.middleware()])
    app.router.add_get("/", page)
    token = base64.b64encode(b"nobody:some password").decode()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        answer = await client.get("/", headers={"Authorization": f"Basic {token}"})

    assert answer.status == 401
    assert made_on
    assert threading.main_thread() not in made_on
