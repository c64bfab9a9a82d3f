"""Writing files so that a crash, a failing encoder or a second process never leaves half of one.

Every final write goes to a temporary file in the target folder first, then takes its name in one step:
`replace` for a name the caller chose (the old file or the new one, never a mix), `claim` for a name that
must not exist yet (numbered outputs: two processes writing to one folder never destroy each other's files).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import BinaryIO, Callable

Writer = Callable[[BinaryIO], None]


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def write_temp(path: Path, write: Writer) -> Path:
    """write(file) into a new hidden temporary file beside `path`, flushed to disk; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_beside(path)
    try:
        # os.open with 0o666 lets the umask decide permissions, as a plain open() would.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def write_atomic(path: str | os.PathLike, write: Writer) -> Path:
    """write(file) to `path`, replacing what is there only once the new file is complete."""
    path = Path(path)
    temp = write_temp(path, write)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def claim(temp: Path, path: Path) -> None:
    """Give the finished file `temp` the name `path` only if no file has it: FileExistsError otherwise
    (and `temp` stays). A hard link makes the name appear complete or not at all; where the file system
    has no hard links, the name is reserved with O_EXCL and the file moved over the reservation."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(temp, path)
        return
    temp.unlink(missing_ok=True)


def make_folder_exclusive(path: Path) -> bool:
    """Create the folder `path`; False if something already has that name."""
    try:
        path.mkdir(parents=False)
    except FileExistsError:
        return False
    return True
