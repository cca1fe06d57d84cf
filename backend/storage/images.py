"""Uploaded images: what is accepted, and where it is stored.

An upload is accepted by its leading bytes (its magic number), never by the client's
``Content-Type`` or file name, and stored under a key the server makes up. The content type
served back is the one found here (sniffed again when served). This is a sniff, not a decode:
clients decode what they download, so the routes also send ``X-Content-Type-Options: nosniff``.

The API maps :class:`ImageTooLarge` to 413 and :class:`UnsupportedImage` to 415; their messages
are written for the user.
"""

from __future__ import annotations

import enum
import re
import uuid
from typing import Literal

MiB = 1024 * 1024
KiB = 1024

_OWNER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class ImageKind(enum.Enum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"

    @property
    def extension(self) -> str:
        return "jpg" if self is ImageKind.JPEG else self.value


class ImageError(ValueError):
    """An upload that is not accepted as an image; the message is fit to show the user."""


class ImageTooLarge(ImageError):
    """The upload is larger than the limit (HTTP 413)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(f"uploads are limited to {format_size(max_bytes)}")
        self.size = size
        self.max_bytes = max_bytes


class UnsupportedImage(ImageError):
    """The upload is empty, or not a PNG, JPEG or WebP image (HTTP 415)."""


_ACCEPTED = "only PNG, JPEG and WebP images are accepted"


def validate_image(data: bytes, *, max_bytes: int) -> ImageKind:
    """The kind of image ``data`` holds, judged by its magic bytes.

    Raises :class:`ImageTooLarge` past ``max_bytes`` and :class:`UnsupportedImage` for an empty
    upload or anything that is not PNG, JPEG or WebP.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes!r}")
    size = len(data)
    if size > max_bytes:
        raise ImageTooLarge(size, max_bytes)
    return sniff_image(data)


def sniff_image(data: bytes) -> ImageKind:
    """The kind of image ``data`` holds by its magic bytes, whatever its size; the one content
    type an upload is stored and served as. :class:`UnsupportedImage` for anything else."""
    if not data:
        raise UnsupportedImage(f"the upload is empty: {_ACCEPTED}")
    head = data[:12]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageKind.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return ImageKind.JPEG
    if len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageKind.WEBP
    raise UnsupportedImage(_ACCEPTED)


def object_key(kind: Literal["cover", "avatar"], owner_id: str, image: ImageKind) -> str:
    """A new, unique server-side key such as ``covers/<owner_id>/<uuid4>.png``.

    ``owner_id`` is the quest's or user's id (letters, digits, ``-`` and ``_``): never a name a
    client chose. Each call gives a new key, so a replaced image never serves a cached old copy.
    """
    if kind not in ("cover", "avatar"):
        raise ValueError(f"kind must be 'cover' or 'avatar', got {kind!r}")
    if not _OWNER_ID.fullmatch(owner_id):
        raise ValueError("owner_id must be 1-128 letters, digits, '-' or '_'")
    return f"{kind}s/{owner_id}/{uuid.uuid4()}.{image.extension}"


def format_size(size: int) -> str:
    """``5 MiB``, ``512 KiB``, ``1.5 MiB``, ``100 bytes``: for messages about limits."""
    for unit, name in ((MiB, "MiB"), (KiB, "KiB")):
        if size >= unit:
            return f"{size / unit:.2f}".rstrip("0").rstrip(".") + f" {name}"
    return f"{size} bytes"
