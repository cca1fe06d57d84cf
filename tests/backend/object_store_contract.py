"""What every :class:`~backend.storage.ObjectStore` promises: one suite, run over each adapter.

A test module subclasses :class:`ObjectStoreContract` as ``Test...`` and provides a ``store``
fixture: a started store whose bucket exists and is empty.
"""

from __future__ import annotations

import hashlib

import pytest

from backend.storage import ObjectNotFound, ObjectStore, ObjectStoreError, StoredObject

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class ObjectStoreContract:
    async def test_put_then_get_returns_bytes_and_content_type(self, store: ObjectStore) -> None:
        await store.put("covers/q1/a.png", PNG_BYTES, "image/png")

        got = await store.get("covers/q1/a.png")

        assert isinstance(got, StoredObject)
        assert got.data == PNG_BYTES
        assert got.content_type == "image/png"
        assert got.etag and not got.etag.startswith('"')

    async def test_etag_is_the_md5_of_a_single_part_upload(self, store: ObjectStore) -> None:
        await store.put("k", b"hello", "text/plain")

        assert (await store.get("k")).etag == hashlib.md5(b"hello").hexdigest()

    async def test_put_replaces_what_was_there(self, store: ObjectStore) -> None:
        await store.put("avatars/u1/x.webp", b"old", "image/webp")
        await store.put("avatars/u1/x.webp", b"new bytes", "image/jpeg")

        got = await store.get("avatars/u1/x.webp")

        assert (got.data, got.content_type) == (b"new bytes", "image/jpeg")

    async def test_get_missing_raises_object_not_found(self, store: ObjectStore) -> None:
        with pytest.raises(ObjectNotFound) as caught:
            await store.get("covers/nobody/missing.png")

        assert caught.value.key == "covers/nobody/missing.png"
        assert isinstance(caught.value, LookupError)
        assert isinstance(caught.value, ObjectStoreError)
        assert not isinstance(caught.value, ConnectionError)  # not retried by default

    async def test_delete_removes_and_is_idempotent(self, store: ObjectStore) -> None:
        await store.put("k", b"data", "application/octet-stream")

        await store.delete("k")
        await store.delete("k")

        with pytest.raises(ObjectNotFound):
            await store.get("k")

    async def test_delete_missing_is_not_an_error(self, store: ObjectStore) -> None:
        await store.delete("never/was/here")

    async def test_ping_succeeds_on_an_existing_bucket(self, store: ObjectStore) -> None:
        await store.ping()

    async def test_ensure_bucket_twice_keeps_the_objects(self, store: ObjectStore) -> None:
        await store.put("k", b"kept", "text/plain")

        await store.ensure_bucket()
        await store.ensure_bucket()

        assert (await store.get("k")).data == b"kept"

    async def test_empty_object_round_trips(self, store: ObjectStore) -> None:
        await store.put("empty", b"", "application/octet-stream")

        assert (await store.get("empty")).data == b""
