"""Reading a small text file the user provides (a run file, a results CSV) without surprises.

Anything that is not a regular file is refused before it is opened (a folder, or a FIFO that
would block the reader forever), and so is a file larger than its kind can be or one that is not
UTF-8; the error names the file and what to do, never a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileProblem(ValueError):
    """A file that cannot be used as it is; the message names it and what to do."""


def read_text(path: str | Path, what: str, max_bytes: int,
              error: type[FileProblem] = FileProblem) -> str:
    """The UTF-8 text of the regular file ``path`` (a ``what``, at most ``max_bytes``).

    Raises ``error`` (a :class:`FileProblem`) naming the file and what to do.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise error(f"{path}: cannot read this {what} ({err.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (FIFO, socket " \
                                                           "or device)"
        raise error(f"{path}: {kind}, expected a {what}: move it away or rename it")
    if st.st_size > max_bytes:
        raise error(f"{path}: {st.st_size} bytes, more than a {what} can be ({max_bytes}): is "
                    f"it the right file?")
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read this {what} ({err.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {data[err.start]:#04x} at offset "
                    f"{err.start}), expected a {what}: save it as UTF-8") from None
