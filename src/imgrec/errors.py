"""The project's exceptions: one root, retryable apart from permanent.

    ImgrecError
    ├── RetryableError            the operation may succeed later: loops catch this one type
    │   ├── BackendUnavailable    the store or queue cannot be reached (or throttles)
    │   └── StorageFull           no space left, or read-only: nothing was written
    └── PermanentError            retrying will not help
        ├── InvalidKey            an object key that could escape the store's root
        ├── ObjectNotFound        no object under that key
        ├── QueueNotFound         no queue with that name
        ├── ImageError            bytes that cannot be classified (not an image, corrupt, huge)
        ├── ModelError            a model file or spec that cannot be loaded
        └── ConfigError           settings that contradict each other
"""

from __future__ import annotations


class ImgrecError(Exception):
    """Root of every error imgrec raises on purpose."""


class RetryableError(ImgrecError):
    """The operation may succeed if tried again later."""


class BackendUnavailable(RetryableError):
    """The object store or the queue service cannot be reached or refused the call."""


class StorageFull(RetryableError):
    """The backend has no space left (or is read-only); nothing was written."""


class PermanentError(ImgrecError):
    """Retrying the same operation will fail the same way."""


class InvalidKey(PermanentError):
    """An object key that is empty, absolute, contains '..' or would leave the store's root."""


class ObjectNotFound(PermanentError):
    """No object is stored under the key."""


class QueueNotFound(PermanentError):
    """No queue with the name exists."""


class ImageError(PermanentError):
    """The bytes are not an image that can be classified.

    ``code`` is a short machine-readable reason: ``not_an_image``, ``corrupt_image``,
    ``image_too_large``, ``unsupported_format``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ModelError(PermanentError):
    """A model file, label list or model spec that cannot be loaded."""


class ConfigError(PermanentError):
    """Settings that are invalid or contradict each other."""
