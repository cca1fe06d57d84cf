"""The front door stage of ``questcity up`` (:mod:`questcity.local_stack`): the backend's fault
proxy (``questcity chaos backend``), every replica behind it in turn, and the TLS front door
(:mod:`questcity.embedded.front_door`) in front of that proxy: the way players reach the API, and
what the monitor's ``front-door`` check watches. The health API's target is watched directly, so
``chaos backend down`` shows a front door that fails while the backend itself is fine: what an
outside check is for."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from questcity.embedded.certificate import (
    CertificateDirectoryError,
    CertificatePaths,
    ensure_certificate,
)
from questcity.embedded.faultproxy import FaultProxy
from questcity.embedded.front_door import FrontDoor
from questcity.preflight import StackError


@dataclass(frozen=True, slots=True)
class FrontDoorStage:
    proxy: FaultProxy
    door: FrontDoor
    certificate: CertificatePaths

    def announcement(self, now: datetime.datetime | None = None) -> str:
        now = now or datetime.datetime.now(datetime.UTC)
        days = (self.certificate.not_after - now).days
        made = "made now" if self.certificate.made else "kept from an earlier run"
        return (
            f"• front door: TLS on {self.door.address[1]}, via fault proxy {self.proxy.port} "
            f"(certificate {made}, {days} days left)"
        )

    def urls(self) -> dict[str, str]:
        return {
            "front door (TLS)": self.door.url("/api/v1/"),
            "its certificate": str(self.certificate.cert),
        }


async def door_certificate(directory: Path) -> CertificatePaths:
    """The front door's certificate in ``directory`` (:func:`ensure_certificate`); a
    :class:`~questcity.preflight.StackError` when that directory is not this user's own."""
    try:
        return await asyncio.to_thread(ensure_certificate, directory)
    except CertificateDirectoryError as error:
        raise StackError(f"the TLS front door's certificate: {error}") from None


async def open_front_door(
    port: int, backend_ports: Sequence[int], certificate: CertificatePaths
) -> FrontDoorStage:
    """Start the backend's fault proxy and the front door on 127.0.0.1:``port``; a
    :class:`~questcity.preflight.StackError` when the door cannot listen (the proxy closed)."""
    first, *others = [("127.0.0.1", p) for p in backend_ports]
    proxy = await asyncio.to_thread(FaultProxy(first, name="backend", alternates=others).start)
    door = FrontDoor(
        ("127.0.0.1", port), upstream=proxy.address, cert=certificate.cert, key=certificate.key
    )
    try:
        await door.start()
    except OSError as error:
        await asyncio.to_thread(proxy.close)
        raise StackError(
            f"the TLS front door could not listen on 127.0.0.1:{port}: "
            f"{error.strerror or error}; choose another with --tls-port"
        ) from None
    return FrontDoorStage(proxy, door, certificate)
