"""A stand-in imgrec wheel for tests whose instances never run it: valid, tiny, no dependencies.

``aws up`` builds a real wheelhouse from it (pip's wheel and this one; cached after the first
time), so these tests go through the same upload and user data as a real stack.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

NAME = "imgrec-0.1.0-py3-none-any.whl"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def stand_in_wheel(directory: Path) -> Path:
    files = {
        "imgrec_stand_in/__init__.py": b'"""A stand-in: no instance runs it."""\n',
        "imgrec-0.1.0.dist-info/METADATA": (b"Metadata-Version: 2.1\nName: imgrec\n"
                                            b"Version: 0.1.0\nProvides-Extra: aws\n"),
        "imgrec-0.1.0.dist-info/WHEEL": (b"Wheel-Version: 1.0\nGenerator: tests\n"
                                         b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = "imgrec-0.1.0.dist-info/RECORD"
    lines = [_record_line(n, d) for n, d in files.items()] + [f"{record},,"]
    path = directory / NAME
    with zipfile.ZipFile(path, "w") as whl:
        for name, data in files.items():
            whl.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
        whl.writestr(zipfile.ZipInfo(record, date_time=(2020, 1, 1, 0, 0, 0)),
                     "\n".join(lines) + "\n")
    return path
