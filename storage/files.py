"""Write a file whole or not at all: into a temporary file beside it, then renamed into place.

A reader (a model load, a user opening a contact list) then sees the old file or the new one,
never half of one, and a failure leaves no partial file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from storage.errors import UserError


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_output(path: Path, data: bytes) -> None:
    """``write_atomically`` for a file a user named: a missing folder or an OS refusal is a
    ``UserError`` naming the path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the folder {path.parent} does not exist", output=str(path))
    try:
        write_atomically(path, data)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}", output=str(path)) from None


__all__ = ["write_atomically", "write_output"]
