"""Storage handlers, named by URL: `file:///dir` (the embedded default) and `s3://bucket/prefix`.

Other packages add schemes with the `memq.storage` entry point group, naming a `StorageHandler` subclass.
"""

from memq.storage.base import StorageHandler, hash_prefix, open_storage, register_storage
from memq.storage.file import FileStorage
from memq.storage.s3 import S3Storage

__all__ = ["FileStorage", "S3Storage", "StorageHandler", "hash_prefix", "open_storage", "register_storage"]
