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
from dataclasses import dataclass
from pathlib import Path

from memberscope.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_LABEL_COLUMN",
    "DEFAULT_TEXT_COLUMN",
    "TABLE_FORMATS",
    "LabelledTexts",
    "read_labelled_texts",
    "read_texts",
]

DEFAULT_TEXT_COLUMN = "text"
DEFAULT_LABEL_COLUMN = "label"
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


def _table_frame(path: Path, what: str, sep: str | None):
    """The table in ``path`` as a DataFrame of strings (Parquet keeps its types)."""
    import pandas as pd

    try:
        if sep is None:
            return pd.read_parquet(path)
        # every cell a string; "NA" or "null" is a text, an empty cell is ""
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError, ImportError, pd.errors.ParserError) as exc:
        raise InvalidInputError(f"cannot read {what} file {str(path)!r} as a table: {exc}") from None


def _column(frame, path: Path, what: str, name: str, *, flag: str, given: bool) -> list:
    if name not in frame.columns:
        columns = ", ".join(repr(str(c)) for c in frame.columns)
        hint = "" if given else f"; pass {flag} NAME"
        raise InvalidInputError(f"{what} file {str(path)!r} has no column {name!r} (columns: {columns}){hint}")
    return frame[name].tolist()


def _read_table(path: Path, what: str, column: str | None, sep: str | None) -> list[str]:
    import pandas as pd

    frame = _table_frame(path, what, sep)
    name = column or DEFAULT_TEXT_COLUMN
    values = _column(frame, path, what, name, flag="--text-column", given=column is not None)
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


@dataclass
class LabelledTexts:
    """Texts and their labels, record ``k`` being data row (or line) ``k + 1`` of the file.

    Attributes
    ----------
    texts : list of str, shape (n,).
    labels : list of str, shape (n,) — as written in the file (JSON numbers become their decimal text).
    ids : list of str, shape (n,) — the id column's values, or ``"{name}:{row}"`` (the file's stem and the
        1-based row) when there is none.
    """

    texts: list[str]
    labels: list[str]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def _as_label(value) -> str | None:
    """A label cell as text: strings as they are, whole numbers as digits; None for a blank or another type."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    if isinstance(value, str):
        return value.strip() or None
    try:  # numpy scalars from Parquet
        return _as_label(value.item())
    except AttributeError:
        return None


def _refuse_empty_or_blank(texts: list[str], path: Path, what: str, unit: str) -> None:
    if not texts:
        raise InvalidInputError(f"{what} file {str(path)!r} holds no records; expected one text per {unit}")
    _refuse_blank(texts, path, what, unit, 1)


def _label_problems(labels: list, path: Path, what: str, column: str, unit: str) -> None:
    bad = [i + 1 for i, v in enumerate(labels) if _as_label(v) is None]
    if bad:
        raise InvalidInputError(
            f"{what} file {str(path)!r} has {len(bad)} missing or unusable label(s) in {column!r} at {unit}s "
            f"{_numbers(bad)}; expected a class name or a whole number on every {unit}"
        )


def read_labelled_texts(
    path: str | os.PathLike,
    *,
    what: str,
    text_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
) -> LabelledTexts:
    """Texts with their labels from a table (``.csv``, ``.tsv``, ``.parquet``) or ``.jsonl`` file, in file order.

    Parameters
    ----------
    path : the file.
    what : how the file is named in error messages (``"members"``).
    text_column, label_column : the columns (JSONL fields) holding the text and the label (default ``"text"``
        and ``"label"``).
    id_column : a column of record ids written to the outputs (default: ``"{file stem}:{row}"``).

    Raises
    ------
    InvalidInputError
        A plain text file (it has no labels); a missing file, column or field; a blank text or a missing label
        (with their row or line numbers).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"{what} file {str(path)!r} does not exist; expected a CSV, TSV, Parquet or JSONL file of texts and labels"
        )
    suffix = path.suffix.lower()
    text_name, label_name = text_column or DEFAULT_TEXT_COLUMN, label_column or DEFAULT_LABEL_COLUMN
    if suffix in TABLE_FORMATS:
        frame = _table_frame(path, what, TABLE_FORMATS[suffix])
        unit = "row"
        texts = _read_table(path, what, text_column, TABLE_FORMATS[suffix])
        _refuse_empty_or_blank(texts, path, what, unit)
        labels = _column(frame, path, what, label_name, flag="--label-column", given=label_column is not None)
        labels = [None if not isinstance(v, str) and pd.isna(v) else v for v in labels]
        ids = None
        if id_column is not None:
            ids = [str(v) for v in _column(frame, path, what, id_column, flag="--id-column", given=True)]
    elif suffix in _JSONL:
        unit = "line"
        texts = _read_jsonl(path, what, text_name)
        _refuse_empty_or_blank(texts, path, what, unit)
        rows = [json.loads(line) for line in _read_lines(path, what)]
        labels = []
        ids = [] if id_column is not None else None
        for number, row in enumerate(rows, start=1):
            if label_name not in row:
                raise InvalidInputError(
                    f'{what} file {str(path)!r} line {number}: expected a field "{label_name}" holding the label'
                    + ("" if label_column else " (or pass --label-column NAME)")
                )
            labels.append(row[label_name])
            if ids is not None:
                if id_column not in row:
                    raise InvalidInputError(f'{what} file {str(path)!r} line {number}: no field "{id_column}"')
                ids.append(str(row[id_column]))
    else:
        raise InvalidInputError(
            f"{what} file {str(path)!r} is plain text: a text classifier audit needs each text's label; expected a "
            ".csv, .tsv, .parquet or .jsonl file with a text column and a label column"
        )
    _label_problems(labels, path, what, label_name, unit)
    if ids is None:
        ids = [f"{path.stem}:{k}" for k in range(1, len(texts) + 1)]
    return LabelledTexts(texts=texts, labels=[str(_as_label(v)) for v in labels], ids=ids)
