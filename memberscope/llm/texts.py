"""Read text records from a file, so that record ``k`` is line (or row) ``k`` of the file.

==================== ===================================================================================
file                 records
==================== ===================================================================================
``.txt`` (any other) one text per line
``.jsonl``/``.ndjson`` one JSON object per line; the text is its ``text_column`` field (default ``"text"``)
``.csv``/``.tsv``    a table with a header row; the text is column ``text_column`` (default ``"text"``)
``.parquet``         a table; the text is column ``text_column`` (default ``"text"``)
==================== ===================================================================================

Tables are parsed as tables (quoted commas and newlines inside a field stay in the text; the header is not
a record). A blank or empty record is refused with its line or row numbers, never dropped: dropping it
would silently shift every later record's number.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from memberscope.exceptions import InvalidInputError

__all__ = ["DEFAULT_TEXT_COLUMN", "TABLE_FORMATS", "read_texts"]

DEFAULT_TEXT_COLUMN = "text"
TABLE_FORMATS = {".csv": ",", ".tsv": "\t", ".parquet": None}
_JSONL = {".jsonl", ".ndjson"}


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def _refuse_blank(texts: list[str], path: Path, what: str, unit: str, first: int) -> None:
    blank = [first + i for i, t in enumerate(texts) if not t.strip()]
    if not blank:
        return
    if len(blank) == len(texts):
        raise InvalidInputError(
            f"{what} file {str(path)!r} holds no records: every {unit} is blank ({unit}s {_numbers(blank)})"
        )
    raise InvalidInputError(
        f"{what} file {str(path)!r} has {len(blank)} blank or empty text(s) at {unit}s {_numbers(blank)}; "
        f"every {unit} must be one non-empty text, so that record k is {unit} k: remove or fill them"
    )


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {what} file {str(path)!r}: {exc}") from None


def _read_jsonl(path: Path, what: str, column: str) -> list[str]:
    texts = []
    for number, line in enumerate(_read_lines(path, what), start=1):
        if not line.strip():
            texts.append("")  # refused below, with its line number
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{what} file {str(path)!r} line {number} is not valid JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get(column), str):
            raise InvalidInputError(
                f'{what} file {str(path)!r} line {number}: expected an object with a string field "{column}"'
                + ("" if column != DEFAULT_TEXT_COLUMN else " (or pass --text-column NAME)")
            )
        texts.append(row[column])
    return texts


def _read_table(path: Path, what: str, column: str | None, sep: str | None) -> list[str]:
    import pandas as pd

    try:
        if sep is None:
            frame = pd.read_parquet(path)
        else:  # every cell a string; "NA" or "null" is a text, an empty cell is ""
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError, ImportError, pd.errors.ParserError) as exc:
        raise InvalidInputError(f"cannot read {what} file {str(path)!r} as a table: {exc}") from None
    name = column or DEFAULT_TEXT_COLUMN
    if name not in frame.columns:
        columns = ", ".join(repr(str(c)) for c in frame.columns)
        hint = "" if column else "; pass --text-column NAME"
        raise InvalidInputError(f"{what} file {str(path)!r} has no column {name!r} (columns: {columns}){hint}")
    values = frame[name].tolist()
    bad = [i + 1 for i, v in enumerate(values) if v is not None and not isinstance(v, str) and not pd.isna(v)]
    if bad:
        raise InvalidInputError(
            f"{what} file {str(path)!r} column {name!r} holds non-text values at rows {_numbers(bad)}; expected strings"
        )
    return ["" if v is None or not isinstance(v, str) else v for v in values]


def read_texts(path: str | os.PathLike, *, what: str, text_column: str | None = None) -> list[str]:
    """The text records of ``path``, in file order (see the module docstring for the formats).

    Parameters
    ----------
    path : a ``.txt`` (one text per line), ``.jsonl``, ``.csv``, ``.tsv`` or ``.parquet`` file.
    what : how the file is named in error messages (``"members"``, ``"suspect"``).
    text_column : the JSON field or table column holding the text (default ``"text"``); a plain text file
        has none.

    Returns
    -------
    list of str, one per line (text and JSONL) or data row (tables).

    Raises
    ------
    InvalidInputError
        Missing or unreadable file; bad JSON or a missing field/column (named, with the columns there); a
        blank or empty record (with its line or row numbers); ``text_column`` for a plain text file.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"{what} file {str(path)!r} does not exist; expected a text (one per line), JSONL, CSV or Parquet file"
        )
    suffix = path.suffix.lower()
    if suffix in TABLE_FORMATS:
        texts = _read_table(path, what, text_column, TABLE_FORMATS[suffix])
        unit, first = "row", 1
    elif suffix in _JSONL:
        texts = _read_jsonl(path, what, text_column or DEFAULT_TEXT_COLUMN)
        unit, first = "line", 1
    else:
        if text_column is not None:
            raise InvalidInputError(
                f"--text-column {text_column!r} given, but {what} file {str(path)!r} is plain text (one record per "
                "line, no columns); expected a .csv, .tsv, .parquet or .jsonl file"
            )
        texts = _read_lines(path, what)
        unit, first = "line", 1
    if not texts:
        raise InvalidInputError(f"{what} file {str(path)!r} holds no records; expected one text per {unit}")
    _refuse_blank(texts, path, what, unit, first)
    return texts
