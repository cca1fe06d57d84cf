"""Subscribers' webhooks: never to a private address (literal, or a name resolving to one), the
connection pinned to the address checked, no redirects followed, the answer's body unread; and
a real receiver on 127.0.0.1 when private addresses are allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from monitor.public.outcomes import PRIVATE_ADDRESS, Refused, Unreachable
from monitor.public.webhooks import PORT_NOT_ALLOWED, WebhookPoster
from tests.monitor.public.servers import Receiver

PUBLIC = "93.184.216.34"


def stub(table: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError("no such name")
        return table[host]

    return resolve


class Recording:
    def __init__(self, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, headers={"Location": "http://127.0.0.1/"})


RESOLVER = stub(
    {
        "internal.example.org": ["10.0.0.5"],
        "mixed.example.org": [PUBLIC, "192.168.1.10"],
        "metadata.example.org": ["169.254.169.254"],
        "six.example.org": ["::1"],
        "hooks.example.org": [PUBLIC],
        "xn--mnchen-3ya.example": [PUBLIC],
    }
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://internal.example.org/hook",
        "http://mixed.example.org/hook",  # any address private: refused (no rebinding roulette)
        "https://metadata.example.org/hook",
        "http://six.example.org/hook",
    ],
)
async def test_private_addresses_are_refused_for_good(url: str) -> None:
    seen = Recording()
    poster = WebhookPoster(timeout=2, resolver=RESOLVER, transport=httpx.MockTransport(seen))

    with pytest.raises(Refused) as refused:
        await poster.post(url, {"x": 1})

    assert (refused.value.kind, refused.value.final) == (PRIVATE_ADDRESS, True)
    assert seen.requests == []
    await poster.aclose()


async def test_the_connection_goes_to_the_checked_address() -> None:
    seen = Recording()
    poster = WebhookPoster(timeout=2, resolver=RESOLVER, transport=httpx.MockTransport(seen))

    await poster.post("https://hooks.example.org:8443/h?k=1", {"x": 1}, key="questcity-delivery-5")
    await poster.post("http://hooks.example.org/h", {"x": 2})
    await poster.post("https://münchen.example/h", {"x": 3})  # resolved, sent as IDNA

    tls, plain, idn = seen.requests
    assert tls.url == httpx.URL(f"https://{PUBLIC}:8443/h?k=1")
    assert tls.headers["Host"] == "hooks.example.org:8443"
    assert tls.extensions["sni_hostname"] == "hooks.example.org"  # and the certificate's name
    assert tls.headers["Idempotency-Key"] == "questcity-delivery-5"
    assert tls.content == b'{"x":1}'
    assert plain.url.host == PUBLIC and plain.headers["Host"] == "hooks.example.org"
    assert "sni_hostname" not in plain.extensions
    assert idn.headers["Host"] == idn.extensions["sni_hostname"] == "xn--mnchen-3ya.example"
    await poster.aclose()


@pytest.mark.parametrize(
    ("port", "allowed"),
    [(25, False), (22, False), (1023, False), (5432 - 5000, False), (80, True), (443, True),
     (8080, True), (8443, True), (1024, True), (5432, True)],
)  # fmt: skip
async def test_only_web_and_unprivileged_ports_are_reached(port: int, allowed: bool) -> None:
    seen = Recording()
    poster = WebhookPoster(timeout=2, resolver=RESOLVER, transport=httpx.MockTransport(seen))
    url = f"https://hooks.example.org:{port}/h"

    if allowed:
        target = await poster.resolve(url)
        assert target.destination == f"webhook:{PUBLIC}"  # the address: the lane's key
    else:
        with pytest.raises(Refused) as refused:
            await poster.post(url, {})
        assert (refused.value.kind, refused.value.final) == (PORT_NOT_ALLOWED, True)
        assert seen.requests == []


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (302, Refused, "redirect"),
        (404, Refused, "rejected"),
        (429, Unreachable, "unavailable"),
        (503, Unreachable, "unavailable"),
    ],
)
async def test_answers_other_than_2xx(status: int, error: type[Exception], kind: str) -> None:
    seen = Recording(status)
    poster = WebhookPoster(timeout=2, resolver=RESOLVER, transport=httpx.MockTransport(seen))

    with pytest.raises(error) as failed:
        await poster.post("http://hooks.example.org/h", {})

    assert getattr(failed.value, "kind", None) == kind
    assert len(seen.requests) == 1  # a redirect is not followed
    await poster.aclose()


async def test_an_unknown_name_is_unreachable_and_the_answer_body_is_never_read() -> None:
    poster = WebhookPoster(timeout=2, resolver=RESOLVER)
    with pytest.raises(Unreachable, match="unresolved"):
        await poster.post("http://nowhere.example.org/h", {})

    class Endless(httpx.AsyncByteStream):
        read = False

        async def __aiter__(self) -> AsyncIterator[bytes]:
            Endless.read = True
            while True:
                yield b"x" * 65536

    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=Endless()))
    reader = WebhookPoster(timeout=2, resolver=RESOLVER, transport=transport)
    await reader.post("http://hooks.example.org/h", {})
    assert not Endless.read
    await reader.aclose()


async def test_a_real_receiver_on_loopback_only_when_allowed() -> None:
    async with Receiver() as receiver:
        strict = WebhookPoster(timeout=5)
        with pytest.raises(Refused, match="private address"):
            await strict.post(receiver.url(), {"n": 1})
        allowed = WebhookPoster(timeout=5, allow_private=True)
        await allowed.post(receiver.url(host="localhost"), {"n": 2}, key="questcity-delivery-9")
        receiver.status = 302
        with pytest.raises(Refused, match="redirect"):
            await allowed.post(receiver.url(), {"n": 3})
        await allowed.aclose()

    assert [b["n"] for b in receiver.bodies] == [2, 3]
    first = receiver.headers[0]
    assert first["Host"] == f"localhost:{receiver.port}"
    assert first["Idempotency-Key"] == "questcity-delivery-9"
    assert first["Content-Type"] == "application/json"
