"""Where proof images live: a small interface, a local folder by default, an S3-compatible
bucket (Tencent COS, Alibaba OSS, MinIO) when configured."""

from src.storage.base import InvalidKey, LocalStorage, Storage, StorageError, check_key
from src.storage.s3 import S3Storage

__all__ = ["InvalidKey", "LocalStorage", "S3Storage", "Storage", "StorageError", "check_key"]
