"""Uploads are judged by their bytes, keys are made by the server, the placeholder is a PNG."""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from backend.storage import (
    PLACEHOLDER_CONTENT_TYPE,
    PLACEHOLDER_PNG,
    ImageError,
    ImageKind,
    ImageTooLarge,
    UnsupportedImage,
    object_key,
    validate_image,
)
from backend.storage.images import format_size

MiB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
WEBP = b"RIFF" + struct.pack("<I", 36) + b"WEBPVP8 " + b"\x00" * 28


@pytest.mark.parametrize(
    ("data", "kind", "content_type", "extension"),
    [
        (PNG, ImageKind.PNG, "image/png", "png"),
        (JPEG, ImageKind.JPEG, "image/jpeg", "jpg"),
        (WEBP, ImageKind.WEBP, "image/webp", "webp"),
    ],
)
def test_accepted_kinds_by_magic_bytes(
    data: bytes, kind: ImageKind, content_type: str, extension: str
) -> None:
    found = validate_image(data, max_bytes=5 * MiB)

    assert found is kind
    assert found.content_type == content_type
    assert found.extension == extension


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a" + b"\x00" * 32,  # GIF: not accepted
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",  # SVG: scripts inside
        b"%PDF-1.7",
        b"\x89PNG\r\n",  # a truncated PNG signature
        b"\xff\xd8",  # a truncated JPEG marker
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # RIFF, but audio
        b"RIFF\x24\x00\x00\x00WEB",  # too short to say WEBP
        b"not an image at all",
        b"\x00" * 64,
    ],
)
def test_other_content_is_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedImage) as caught:
        validate_image(data, max_bytes=5 * MiB)

    assert str(caught.value) == "only PNG, JPEG and WebP images are accepted"
    assert isinstance(caught.value, ImageError)


def test_empty_upload_is_unsupported_with_a_clear_message() -> None:
    with pytest.raises(UnsupportedImage, match="empty") as caught:
        validate_image(b"", max_bytes=5 * MiB)

    assert "only PNG, JPEG and WebP images are accepted" in str(caught.value)


def test_too_large_is_refused_before_looking_at_the_bytes() -> None:
    data = PNG + b"\x00" * (5 * MiB)

    with pytest.raises(ImageTooLarge) as caught:
        validate_image(data, max_bytes=5 * MiB)

    assert str(caught.value) == "uploads are limited to 5 MiB"
    assert (caught.value.size, caught.value.max_bytes) == (len(data), 5 * MiB)


def test_too_large_wins_over_unsupported() -> None:
    with pytest.raises(ImageTooLarge):
        validate_image(b"x" * 11, max_bytes=10)


def test_exactly_the_limit_is_accepted() -> None:
    data = PNG + b"\x00" * (1024 - len(PNG))

    assert validate_image(data, max_bytes=1024) is ImageKind.PNG


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        validate_image(PNG, max_bytes=0)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (5 * MiB, "5 MiB"),
        (MiB + MiB // 2, "1.5 MiB"),
        (512 * 1024, "512 KiB"),
        (1000, "1000 bytes"),
        (1, "1 bytes"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


# -- keys ------------------------------------------------------------------------------------------

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_cover_key_shape() -> None:
    key = object_key("cover", "42", ImageKind.PNG)

    assert re.fullmatch(rf"covers/42/{UUID4}\.png", key)


def test_avatar_key_shape_and_jpeg_extension() -> None:
    key = object_key("avatar", "0b7c6f1e-user", ImageKind.JPEG)

    assert re.fullmatch(rf"avatars/0b7c6f1e-user/{UUID4}\.jpg", key)


def test_every_key_is_new() -> None:
    keys = {object_key("cover", "q1", ImageKind.WEBP) for _ in range(100)}

    assert len(keys) == 100


@pytest.mark.parametrize(
    "owner_id", ["", "../etc", "a/b", "a b", "x" * 129, "ümlaut", "a\x00b", ".", ".."]
)
def test_owner_ids_that_could_escape_the_prefix_are_refused(owner_id: str) -> None:
    with pytest.raises(ValueError, match="owner_id"):
        object_key("cover", owner_id, ImageKind.PNG)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        object_key("banner", "1", ImageKind.PNG)  # type: ignore[arg-type]


# -- the placeholder -------------------------------------------------------------------------------


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    chunks = []
    offset = 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        body = png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        offset += 12 + length
    assert offset == len(png)
    return chunks


def test_placeholder_is_a_valid_png() -> None:
    assert PLACEHOLDER_CONTENT_TYPE == "image/png"
    assert PLACEHOLDER_PNG.startswith(b"\x89PNG\r\n\x1a\n")
    chunks = _chunks(PLACEHOLDER_PNG)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"

    width, height, depth, color, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (width, height) == (64, 64)
    assert (depth, color, compression, filtering, interlace) == (8, 2, 0, 0, 0)

    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    row = 1 + width * 3
    assert len(pixels) == height * row
    assert all(pixels[y * row] == 0 for y in range(height))  # filter "none" on every row


def test_placeholder_passes_our_own_upload_check_and_is_small() -> None:
    assert validate_image(PLACEHOLDER_PNG, max_bytes=5 * MiB) is ImageKind.PNG
    assert len(PLACEHOLDER_PNG) < 2048
