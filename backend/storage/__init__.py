"""Object storage for the backend: the port, its S3 adapter, the guarded gateway the application
calls (:class:`ObjectStorage`), image checks and the placeholder.

The core imports from here; only the composition root builds an :class:`S3ObjectStore` and the
:class:`ObjectStorage` around it.
"""

from backend.storage.images import (
    ImageError,
    ImageKind,
    ImageTooLarge,
    UnsupportedImage,
    object_key,
    sniff_image,
    validate_image,
)
from backend.storage.object_storage import ObjectStorage
from backend.storage.object_store import (
    InMemoryObjectStore,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreNotConfigured,
    ObjectStoreUnavailable,
    StoredObject,
)
from backend.storage.placeholder import PLACEHOLDER_CONTENT_TYPE, PLACEHOLDER_PNG
from backend.storage.s3 import S3ObjectStore

__all__ = [
    "PLACEHOLDER_CONTENT_TYPE",
    "PLACEHOLDER_PNG",
    "ImageError",
    "ImageKind",
    "ImageTooLarge",
    "InMemoryObjectStore",
    "ObjectNotFound",
    "ObjectStorage",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreNotConfigured",
    "ObjectStoreUnavailable",
    "S3ObjectStore",
    "StoredObject",
    "UnsupportedImage",
    "object_key",
    "sniff_image",
    "validate_image",
]
