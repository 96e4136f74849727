"""The user's records, as their model expects them: ``prepare_inputs`` for ``audit_model`` and ``audit-model``.

Members, non-members and (optionally) population records come as tables (a pandas DataFrame, or a CSV, Parquet or
R data file with a label column) or as ``(X, y)`` pairs. They reach the model as it was fitted:

- a model fitted on a DataFrame (scikit-learn's ``feature_names_in_``) gets a DataFrame with its columns, matched
  **by name** (never by position): a column it needs that is missing, or a table column it does not know, is an
  error naming them (leave columns out with ``drop_columns``, or name them as the id or group column);
  strings, categoricals, booleans and missing values reach it intact, so its own preprocessing applies;
- any other model gets the feature columns (``feature_columns``, else every column but the label, id and group
  columns, in table order) as numbers, and the order used is recorded.

Labels are mapped through the model's ``classes_`` (string or non-contiguous labels included) and shown by name in
every output. Every record keeps the user's id (``id_column``, else its row in the table or array given). Exact
copies of members among the non-members (and population) are counted, and dropped on request: a non-member that
is a copy of a member is, for the model, a member, so the membership question about it is ill-posed. A numeric
column that looks like a record id (``id``, ``*_id``; one value per row) used as a feature gets a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["PreparedInputs", "prepare_inputs"]

SETS = ("members", "nonmembers", "population")
MAX_POPULATION = 2000
_ID_NAME = re.compile(r"(^|[_.\s-])id$|^id[_.\s-]|^(record|patient|customer|user|row)[_.\s-]?(id|number|no)$", re.I)


@dataclass
class _Part:
    """One of the user's sets: records, raw labels, ids and groups."""

    name: str
    X: Any  # DataFrame or ndarray
    y: np.ndarray
    ids: np.ndarray
    groups: np.ndarray | None


@dataclass
class PreparedInputs:
    """The user's records ready for the engine.

    Attributes
    ----------
    dataset : Dataset — members, then non-members, then population; ``y`` as the model's class codes, ``ids`` the
        user's ids, ``class_names`` the model's classes as text, ``features`` the columns used.
    n_members, n_nonmembers, n_population : int
    sets : ndarray of str of shape (n,) — ``members`` / ``nonmembers`` / ``population`` per record.
    section : dict — the ``inputs`` block of results.json (columns used, label mapping, duplicates, ...).
    warnings : list of str
    """

    dataset: Any
    n_members: int
    n_nonmembers: int
    n_population: int
    sets: np.ndarray
    section: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _is_frame(value: Any) -> bool:
    return hasattr(value, "iloc") and hasattr(value, "columns")


def _read_part(
    name: str,
    value: Any,
    *,
    label_column: str,
    id_column: str | None,
    group_column: str | None,
) -> _Part:
    """A set given as a path, a DataFrame with the label column, or ``(X, y)``."""
    from memberscope.datasets import read_frame

    if isinstance(value, str | Path):
        value = read_frame(value)
        where = f"{name} file"
    else:
        where = name
    if _is_frame(value):
        columns = [str(c) for c in value.columns]
        for role, column in (("label", label_column), ("id", id_column), ("group", group_column)):
            if column is not None and column not in value.columns:
                raise InvalidInputError(f"{where} has no {role} column {column!r}; its columns are {columns}")
        frame = value
        y = frame[label_column].to_numpy()
        X = frame.drop(columns=[c for c in (label_column, id_column, group_column) if c is not None])
        ids = frame[id_column].to_numpy() if id_column is not None else frame.index.to_numpy()
        groups = None if group_column is None else frame[group_column].astype(str).to_numpy()
        return _Part(name, X, y, ids, groups)
    if not (isinstance(value, tuple | list) and len(value) == 2):
        raise InvalidInputError(
            f"{name} must be a table (a DataFrame or a CSV/Parquet/R data file with a {label_column!r} column) or a "
            f"pair (X, y); got {type(value).__name__}"
        )
    X, y = value
    y = np.asarray(y)
    if _is_frame(X):
        ids = X.index.to_numpy() if id_column is None else X[id_column].to_numpy()
        groups = None if group_column is None else X[group_column].astype(str).to_numpy()
        X = X.drop(columns=[c for c in (id_column, group_column) if c is not None])
    else:
        X = np.asarray(X)
        if X.ndim < 2:
            raise InvalidInputError(f"{name}: X must have shape (n, ...features); got shape {X.shape}")
        if group_column is not None or id_column is not None:
            raise InvalidInputError(f"{name}: id and group columns need a table with column names; got an array")
        ids, groups = np.arange(len(X)), None
    if y.ndim != 1 or len(y) != len(X):
        raise InvalidInputError(
            f"{name} must be (X, y) with X of n rows and y of shape (n,); got {len(X)} rows, y {y.shape}"
        )
    return _Part(name, X, y, ids, groups)


def _feature_columns(target: Any) -> list[str] | None:
    names = getattr(getattr(target, "estimator", None), "feature_names_in_", None)
    return None if names is None else [str(c) for c in names]


def _select_features(
    parts: list[_Part],
    target: Any,
    *,
    feature_columns: list[str] | None,
    drop_columns: list[str] | None,
    notes: list[str],
) -> list[str] | None:
    """Put every part's records in the form the model takes; the feature names used (None for arrays)."""
    import pandas as pd

    drop = list(drop_columns or [])
    fitted = _feature_columns(target)
    for part in parts:
        if _is_frame(part.X):
            missing_drop = [c for c in drop if c not in part.X.columns]
            if missing_drop:
                raise InvalidInputError(f"drop_columns {missing_drop} are not columns of the {part.name}")
            part.X = part.X.drop(columns=drop)
    if fitted is not None:
        wanted = fitted if feature_columns is None else list(feature_columns)
        if feature_columns is not None and sorted(wanted) != sorted(fitted):
            raise InvalidInputError(
                f"feature_columns {wanted} differ from the columns the model was fitted on: {fitted}"
            )
        for part in parts:
            if not _is_frame(part.X):
                if part.X.ndim != 2 or part.X.shape[1] != len(fitted):
                    raise InvalidInputError(
                        f"the model was fitted on the columns {fitted}; the {part.name} are an array of shape "
                        f"{part.X.shape}: give them as a table with those columns"
                    )
                part.X = pd.DataFrame(part.X, columns=fitted)
                notes.append(
                    f"the {part.name} came without column names; they reach the model in the order of its columns"
                )
                continue
            have = [str(c) for c in part.X.columns]
            missing = [c for c in fitted if c not in have]
            extra = [c for c in have if c not in fitted]
            if missing:
                raise InvalidInputError(
                    f"the {part.name} lack the columns {missing} that the model was fitted on (it needs {fitted})"
                )
            if extra:
                raise InvalidInputError(
                    f"the {part.name} have the columns {extra}, which the model was not fitted on; leave them out "
                    "with drop_columns (--drop-columns), or name them as the id or group column"
                )
            part.X = part.X[fitted]  # by name, in the model's order
        _check_stray_text(parts, fitted)
        return fitted
    frames = [p for p in parts if _is_frame(p.X)]
    if frames and len(frames) != len(parts):
        raise InvalidInputError("give members, non-members and population alike: all as tables or all as arrays")
    if not frames:
        if feature_columns is not None:
            raise InvalidInputError("feature_columns need tables with column names; got arrays")
        return None
    names = list(feature_columns) if feature_columns is not None else [str(c) for c in frames[0].X.columns]
    for part in parts:
        have = [str(c) for c in part.X.columns]
        missing = [c for c in names if c not in have]
        if missing:
            raise InvalidInputError(f"the {part.name} lack the feature columns {missing}; they have {have}")
        if feature_columns is None and have != names:
            other = sorted(set(have) ^ set(names))
            if other:
                raise InvalidInputError(
                    f"the {part.name} have other columns than the {parts[0].name}: {other}; give the same columns"
                )
        part.X = part.X[names]
    _check_stray_text(parts, names)
    for part in parts:
        non_numeric = [c for c in names if not _numeric(part.X[c])]
        if non_numeric:
            raise InvalidInputError(
                f"the columns {non_numeric} are not numeric and the model was not fitted on a table that names "
                "them (no feature_names_in_): encode them, or audit the Pipeline that encodes them"
            )
        part.X = part.X.to_numpy(dtype=np.float32, na_value=np.nan)
    notes.append(f"the model does not name its input columns; the features used, in order: {names}")
    return names


LABEL_SHIFT_ALPHA = 0.01
"""Below this p-value (chi-square test of homogeneity) members' and non-members' labels are said to differ."""


def _label_shift(members: np.ndarray, nonmembers: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Whether members' and non-members' class distributions differ (Pearson's chi-square test of homogeneity
    on the 2 × C table of counts, :func:`scipy.stats.chi2_contingency`): then attacks partly measure the label
    shift (a model's loss differs by class), not membership. The counts per class by name, the statistic, the
    p-value and a warning when p < :data:`LABEL_SHIFT_ALPHA`."""
    from scipy.stats import chi2_contingency

    n = len(class_names)
    table = np.vstack([np.bincount(members, minlength=n), np.bincount(nonmembers, minlength=n)])
    present = table.sum(axis=0) > 0
    counts = {
        "members": {class_names[c]: int(table[0, c]) for c in np.flatnonzero(present)},
        "nonmembers": {class_names[c]: int(table[1, c]) for c in np.flatnonzero(present)},
    }
    out: dict[str, Any] = {**counts, "chi2": None, "p_value": None, "alpha": LABEL_SHIFT_ALPHA, "warning": None}
    table = table[:, present]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return out
    result = chi2_contingency(table, correction=False)
    out["chi2"], out["p_value"] = float(result.statistic), float(result.pvalue)
    if out["p_value"] < LABEL_SHIFT_ALPHA:

        def shares(row: np.ndarray) -> str:
            total = row.sum()
            return ", ".join(
                f"{class_names[c]} {100 * row[i] / total:.0f}%" for i, c in enumerate(np.flatnonzero(present))
            )

        out["warning"] = (
            f"LABEL SHIFT: members' and non-members' labels differ (members {shares(table[0])}; non-members "
            f"{shares(table[1])}; chi-square p = {out['p_value']:.2g}): the attacks partly measure this label "
            "shift rather than membership, so the figures may overstate (or misplace) leakage; give members and "
            "non-members with the same class mix"
        )
    return out


def _check_stray_text(parts: list[_Part], names: list[str]) -> None:
    """Refuse text in a column that holds numbers elsewhere (in this set or another): a typo such as ``"high"``
    among glucose values, which the model cannot take (a column of text throughout is left to the model's own
    encoding). The error names the column, the values and the records' ids."""
    from memberscope.datasets.tables import check_numeric_cells, holds_numbers

    frames = [p for p in parts if _is_frame(p.X)]
    numeric = [c for c in names if any(holds_numbers(p.X[c]) for p in frames)]
    for part in frames:
        check_numeric_cells(part.X, numeric, where=f"the {part.name}", ids=part.ids)


def _numeric(column) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_numeric_dtype(column) or is_bool_dtype(column)


def _id_like(parts: list[_Part], names: list[str] | None) -> list[str]:
    """Feature columns named like an id that hold a distinct number on every row."""
    if not names:
        return []
    found = []
    for name in names:
        if not _ID_NAME.search(name):
            continue
        values = [p.X[name] for p in parts if _is_frame(p.X)]
        if not values:
            continue
        import pandas as pd

        column = pd.concat(values, ignore_index=True)
        if _numeric(column) and column.nunique(dropna=True) == len(column):
            found.append(name)
    return found


def _row_keys(part: _Part) -> np.ndarray:
    """A hash per record of its features and label (equal records, equal keys)."""
    import pandas as pd

    if _is_frame(part.X):
        frame = part.X.copy()
        frame["__label__"] = part.y
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()
    flat = np.ascontiguousarray(np.asarray(part.X).reshape(len(part.X), -1))
    keys = [hash((row.tobytes(), str(label))) for row, label in zip(flat, part.y, strict=True)]
    return np.asarray(keys, dtype=np.int64)


def _duplicates(members: _Part, others: list[_Part]) -> dict[str, np.ndarray]:
    """For each other set, a mask of its records that are exact copies (features and label) of a member."""
    member_keys = set(_row_keys(members).tolist())
    return {p.name: np.isin(_row_keys(p), list(member_keys)) for p in others}


def _check_overlap(members: _Part, nonmembers: _Part, *, by_id: bool, warnings: list[str]) -> None:
    """Refuse members and non-members that are the same records (one set inside the other: by id with an id column,
    else by features and label), since no membership question is left; warn, naming the ids, when some ids are in
    both (partial copies without ids get the duplicates warning)."""
    if by_id:
        member_keys = np.asarray([str(v) for v in members.ids])
        nonmember_keys = np.asarray([str(v) for v in nonmembers.ids])
        what = "records (by id)"
    else:
        member_keys, nonmember_keys = _row_keys(members), _row_keys(nonmembers)
        what = "records (features and label)"
    in_members = np.isin(nonmember_keys, member_keys)
    if not in_members.any():
        return
    shared = [str(v) for v in dict.fromkeys(nonmembers.ids[in_members].tolist())]
    if in_members.all() or np.isin(member_keys, nonmember_keys).all():
        raise InvalidInputError(
            f"the members ({len(member_keys)}) and non-members ({len(nonmember_keys)}) are the same {what}: "
            f"{len(shared)} non-members are also members (e.g. {shared[:5]}) and one set lies entirely inside the "
            "other, so no membership question is left to audit (the same file given twice?); give the records "
            "the model did not train on as the non-members"
        )
    if by_id:
        more = f" and {len(shared) - 10} more" if len(shared) > 10 else ""
        warnings.append(
            f"{len(shared)} ids are both members and non-members ({shared[:10]}{more}): a record cannot be both; "
            "check the id column and the files"
        )


def _take(part: _Part, keep: np.ndarray) -> _Part:
    X = part.X.iloc[np.flatnonzero(keep)] if _is_frame(part.X) else part.X[keep]
    groups = None if part.groups is None else part.groups[keep]
    return _Part(part.name, X, part.y[keep], part.ids[keep], groups)


def _codes(target: Any, parts: list[_Part], n_classes: int | None) -> tuple[list[np.ndarray], list[str]]:
    """Class codes (output columns) of every part's labels, and the class names."""
    if target.classes is not None:
        names = [str(c) for c in np.asarray(target.classes).tolist()]
        return [target.column_of(p.y) for p in parts], names
    raw = np.concatenate([p.y for p in parts])
    if raw.dtype.kind not in "iub" and not (raw.dtype.kind == "f" and np.all(raw == np.round(raw))):
        raise InvalidInputError(
            f"{target.description} does not name its classes, so labels must be its output columns 0..n-1; got "
            f"labels such as {[str(v) for v in raw[:3]]}"
        )
    count = int(n_classes if n_classes is not None else (target.n_classes or int(raw.max()) + 1))
    codes = [p.y.astype(np.int64) for p in parts]
    if raw.min() < 0 or raw.max() >= count:
        raise InvalidInputError(
            f"labels must lie in 0..{count - 1} (the model's outputs); got {raw.min()}..{raw.max()}"
        )
    return codes, [str(c) for c in range(count)]


def _check_counts(n_members: int, n_nonmembers: int, *, set_aside: int | None) -> None:
    """Refuse, before any model is trained, a game whose metrics :func:`memberscope.metrics.evaluate` would refuse;
    ``set_aside``: non-members drawn as the population (None when the population was given)."""
    from memberscope.metrics import MIN_NONMEMBERS, check_class_counts

    try:
        check_class_counts(n_members, n_nonmembers)
    except InvalidInputError as exc:
        if not set_aside or n_nonmembers >= MIN_NONMEMBERS:
            raise
        raise InvalidInputError(
            f"{exc}; {set_aside} of the {n_nonmembers + set_aside} non-members given were set aside as the "
            "population (a quarter), so give more non-members or a population of its own"
        ) from None


def prepare_inputs(
    target: Any,
    members: Any,
    nonmembers: Any,
    population: Any = None,
    *,
    label_column: str = "label",
    id_column: str | None = None,
    group_column: str | None = None,
    feature_columns: list[str] | None = None,
    drop_columns: list[str] | None = None,
    drop_duplicates: bool = False,
    n_classes: int | None = None,
    seed: int = 0,
) -> PreparedInputs:
    """The user's records ready for the engine (see the module docstring).

    Parameters
    ----------
    target : Target — the model, wrapped (:func:`memberscope.targets.wrap`).
    members, nonmembers : table or ``(X, y)`` — records the model did and did not train on.
    population : table or ``(X, y)``, optional — further records no model trained on; by default a seeded quarter
        of the non-members (at most 2,000), keeping their ids.
    label_column, id_column, group_column : columns of the tables.
    feature_columns, drop_columns : which columns are features (see the module docstring).
    drop_duplicates : drop non-members (and population records) that are exact copies of a member.
    n_classes : number of output columns of a model that does not name its classes.
    seed : the seed of the population draw.

    Raises
    ------
    InvalidInputError
        Naming the set and the column, label or shape at fault: a missing or extra column, a label the model does
        not know, a single class, arrays where the model needs named columns, mixed tables and arrays; and fewer
        than :data:`~memberscope.metrics.MIN_MEMBERS` (5) members or :data:`~memberscope.metrics.MIN_NONMEMBERS`
        (5) non-members left after the population is drawn (:func:`memberscope.metrics.check_class_counts`).
    """
    from memberscope.datasets import Dataset
    from memberscope.game import derive_seed

    def read(name: str, value: Any) -> _Part:
        return _read_part(name, value, label_column=label_column, id_column=id_column, group_column=group_column)

    parts = [read("members", members), read("nonmembers", nonmembers)]
    if population is not None:
        parts.append(read("population", population))
    notes: list[str] = []
    names = _select_features(parts, target, feature_columns=feature_columns, drop_columns=drop_columns, notes=notes)
    warnings: list[str] = []
    id_like = _id_like(parts, names)
    if id_like:
        warnings.append(
            f"the feature columns {id_like} look like record ids (one number per row): if the model does use them, "
            "it can memorize records by their id; if they are not features, pass them as --id-column or "
            "--drop-columns"
        )
    _check_overlap(parts[0], parts[1], by_id=id_column is not None, warnings=warnings)
    dup_masks = _duplicates(parts[0], parts[1:])
    duplicates = {name: int(mask.sum()) for name, mask in dup_masks.items()}
    if duplicates.get("nonmembers"):
        examples = [str(v) for v in parts[1].ids[dup_masks["nonmembers"]][:10]]
        text = (
            f"{duplicates['nonmembers']} of {len(parts[1].y)} non-members are exact copies of members (features and "
            f"label; e.g. records {examples}): to the model they are members, so the membership question about them "
            "is ill-posed"
        )
        warnings.append(text + ("; they were dropped" if drop_duplicates else "; drop them with --drop-duplicates"))
    if drop_duplicates:
        parts = [parts[0], *(_take(p, ~dup_masks[p.name]) for p in parts[1:])]
    codes, class_names = _codes(target, parts, n_classes)
    member_codes, nonmember_codes = codes[0], codes[1]
    if len(np.unique(np.concatenate([member_codes, nonmember_codes]))) < 2:
        only = class_names[int(member_codes[0])] if len(member_codes) else "?"
        raise InvalidInputError(
            f"every member and non-member has the label {only!r}; a membership audit needs records of at least two "
            "classes (reference models like the target cannot be trained on one)"
        )
    label_shift = _label_shift(member_codes, nonmember_codes, class_names)
    if label_shift["warning"]:
        warnings.append(label_shift["warning"])
    if population is None:
        rng = np.random.default_rng(derive_seed(seed, "byo-population", 0))
        nonmembers_part = parts[1]
        order = rng.permutation(len(nonmembers_part.y))
        n_pop = min(MAX_POPULATION, len(order) // 4)
        pop_mask = np.zeros(len(order), dtype=bool)
        pop_mask[order[:n_pop]] = True
        parts = [parts[0], _take(nonmembers_part, ~pop_mask), _take(nonmembers_part, pop_mask)]
        parts[2].name = "population"
        codes = [codes[0], codes[1][~pop_mask], codes[1][pop_mask]]
    n = [len(p.y) for p in parts]
    _check_counts(n[0], n[1], set_aside=None if population is not None else n[2])
    if _is_frame(parts[0].X):
        import pandas as pd

        X = pd.concat([p.X for p in parts], ignore_index=True)
    else:
        X = np.concatenate([np.asarray(p.X) for p in parts])
    groups = None
    if group_column is not None:
        groups = np.concatenate([p.groups for p in parts])
    dataset = Dataset(
        name="user-model",
        X=X,
        y=np.concatenate(codes),
        n_classes=len(class_names),
        class_names=class_names,
        groups=groups,
        description="records supplied with a user's model",
        source="user",
        ids=np.concatenate([np.asarray(p.ids, dtype=object) for p in parts]),
        features=names,
        exact=True,
    )
    sets = np.concatenate([np.full(k, p.name) for k, p in zip(n, parts, strict=True)])
    section = {
        "label_column": label_column,
        "id_column": id_column,
        "group_column": group_column,
        "features": names,
        "classes": class_names,
        "records": {"members": n[0], "nonmembers": n[1], "population": n[2]},
        "population": "given"
        if population is not None
        else f"a seeded quarter of the non-members (at most {MAX_POPULATION})",
        "duplicates_of_members": duplicates,
        "label_shift": {k: v for k, v in label_shift.items() if k != "warning"},
        "duplicates_dropped": bool(drop_duplicates),
        "id_like_features": id_like,
        "notes": notes,
    }
    return PreparedInputs(dataset, n[0], n[1], n[2], sets, section, warnings)
