"""imgrec: an elastic image-recognition service."""

__version__ = "0.1.0"
