"""CSV files sealed with a digest of their rows: a changed cell, a duplicated, dropped or
reordered row is detected when the file is read.

The seal is one more column, :data:`DIGEST_COLUMN`, last in the header and holding the same
value in every row: the first 16 hex digits of the sha256 of the JSON list
``[header, row 1, row 2, ...]``, every row as its cells' text *without* the digest column. The
file stays a plain CSV (``pandas.read_csv(path)`` reads it, the digest as one more column) and
is written in one atomic rename, so there is no second file to keep in step with it.
:mod:`scflow.repro.results` builds the results CSVs on it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

from scflow.repro.textfile import FileProblem, read_text

DIGEST_COLUMN = "digest"
MAX_CSV_BYTES = 256 * 2**20
"""Larger files are refused unread (a results CSV of the paper's scale is a few MB)."""


class CsvFileError(FileProblem):
    """A CSV that cannot be used as it is; the message names the file and what to do."""


class ModifiedCsvError(CsvFileError):
    """A CSV whose rows no longer match the digest written with them."""


def rows_digest(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The digest of ``header`` and ``rows`` (cell text, digest column left out)."""
    blob = json.dumps([list(header), *map(list, rows)], ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sealed_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """The CSV text of ``header`` + ``rows`` with the :data:`DIGEST_COLUMN` appended.

    The digest is taken over the cells as a CSV reader will read them back (written, then
    parsed), so that reading and writing can never disagree about a cell's text.
    """
    if DIGEST_COLUMN in header:
        raise ValueError(f"{DIGEST_COLUMN!r} is added by sealed_csv, not given")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    parsed = list(csv.reader(io.StringIO(buf.getvalue())))
    digest = rows_digest(parsed[0], parsed[1:])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [[*parsed[0], DIGEST_COLUMN], *([*r, digest] for r in parsed[1:])])
    return out.getvalue().encode()


def read_sealed(path: Path, what: str = "results CSV", remedy: str = "restore it",
                check_digest: bool = True) -> tuple[str, list[str], list[list[str]]]:
    """``(text, header, rows)`` of a sealed CSV, the header and rows without the digest
    column, verified; ``text`` is the whole file as read (once).

    Raises :class:`CsvFileError` for a file that is not a CSV of equal-length rows and
    :class:`ModifiedCsvError` for one without a digest or whose rows do not match it
    (``check_digest=False`` skips only the latter, to read a file knowingly).
    """
    text = read_text(path, what, MAX_CSV_BYTES, CsvFileError)
    return (text, *parse_sealed(text, path, what, remedy, check_digest))


def parse_sealed(text: str, path: Path, what: str, remedy: str,
                 check_digest: bool = True) -> tuple[list[str], list[list[str]]]:
    """:func:`read_sealed` of a file's ``text`` (``path`` names it in errors)."""
    if not text.strip():
        raise CsvFileError(f"{path}: empty, expected a {what}: {remedy}")
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise CsvFileError(f"{path}: not a CSV ({err}): {remedy}") from None
    header, rows = table[0], [r for r in table[1:] if r]
    for i, row in enumerate(rows, 2):
        if len(row) != len(header):
            raise CsvFileError(f"{path}: row {i} has {len(row)} cells, the header "
                               f"{len(header)}: {remedy}")
    if DIGEST_COLUMN not in header or header[-1] != DIGEST_COLUMN:
        if check_digest:
            raise ModifiedCsvError(f"{path}: no {DIGEST_COLUMN!r} column (written by an older "
                                   f"version, or edited): {remedy}")
        return header, rows
    body = [r[:-1] for r in rows]
    if check_digest:
        digests = {r[-1] for r in rows}
        if not rows or digests != {rows_digest(header[:-1], body)}:
            raise ModifiedCsvError(f"{path}: modified after its run: {remedy}")
    return header[:-1], body
