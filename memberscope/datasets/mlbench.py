"""Real clinical tables shipped by Debian's ``r-cran-mlbench`` (``.rda`` files, read without R by ``rdata``).

- ``pima-diabetes``: Pima Indians Diabetes (``PimaIndiansDiabetes2``): 768 women, 8 measurements with the
  physiologically impossible zeros of the original recorded as missing (652 missing values), label ``diabetes``
  (``neg``/``pos``).
- ``breast-cancer-original``: the original Wisconsin Breast Cancer data (``BreastCancer``): 699 biopsies, 9 cytology
  scores from 1 to 10 stored as categories, 16 missing ``Bare.nuclei``, label ``Class`` (``benign``/``malignant``),
  and an ``Id`` that repeats: 236 rows are exact copies of another row, which makes membership questions about
  them ill-posed (the audit counts such copies across members and non-members).

:func:`load_frame` gives each table as it is (strings, categories, missing values: what a scikit-learn Pipeline
takes); as a built-in dataset (``memberscope audit --dataset pima-diabetes``) it becomes numeric: categories by
their order, and each missing value replaced by its column's median with a 0/1 ``<column>_missing`` indicator column
added (no model trains on the medians' choice of records: they use every record, members and non-members alike).
Install the data with ``apt-get install r-cran-mlbench`` (``scripts/setup.sh`` does) or point
``MEMBERSCOPE_MLBENCH_DIR`` / ``--data-dir`` at a folder holding the ``.rda`` files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._registry import DATASETS, BuiltinDataset
from memberscope.exceptions import DataUnavailableError

__all__ = ["MLBENCH_TABLES", "load_frame", "mlbench_dir"]

DEFAULT_DIR = "/usr/lib/R/site-library/mlbench/data"
HINT = "install Debian's r-cran-mlbench (apt-get install r-cran-mlbench), or set MEMBERSCOPE_MLBENCH_DIR / --data-dir"

# name -> (R object, label column, id column or None, description); records and numeric features in _SIZES.
_SIZES = {"pima-diabetes": (768, 13), "breast-cancer-original": (699, 10)}
MLBENCH_TABLES: dict[str, tuple[str, str, str | None, str]] = {
    "pima-diabetes": (
        "PimaIndiansDiabetes2",
        "diabetes",
        None,
        "Pima Indians diabetes: 768 women, 8 measurements (652 missing values), diabetes neg/pos (r-cran-mlbench)",
    ),
    "breast-cancer-original": (
        "BreastCancer",
        "Class",
        "Id",
        "original Wisconsin breast cancer: 699 biopsies, 9 scores 1-10 as categories, 16 missing, many duplicate "
        "rows, benign/malignant (r-cran-mlbench)",
    ),
}


def mlbench_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where the mlbench ``.rda`` files are: ``data_dir``, else ``$MEMBERSCOPE_MLBENCH_DIR``, else Debian's folder."""
    return Path(data_dir or os.environ.get("MEMBERSCOPE_MLBENCH_DIR") or DEFAULT_DIR)


def load_frame(name: str, *, data_dir: str | os.PathLike | None = None):
    """The mlbench table ``name`` (see :data:`MLBENCH_TABLES`) as a pandas DataFrame, as R stores it.

    Raises DataUnavailableError naming what to install when the file is missing.
    """
    from memberscope.datasets.tables import read_frame

    obj = MLBENCH_TABLES[name][0]
    path = mlbench_dir(data_dir) / f"{obj}.rda"
    if not path.is_file():
        raise DataUnavailableError(f"dataset {name!r} needs {path}, which does not exist: {HINT}")
    return read_frame(path)


def _numeric(frame, label: str, id_column: str | None):
    """``(X float32 (n, d), labels, feature names)``: categories by their order, missing values imputed with the
    column median plus a 0/1 indicator column per column that has any."""
    import pandas as pd

    features = [c for c in frame.columns if c not in (label, id_column)]
    columns, names = [], []
    for c in features:
        values = frame[c]
        if isinstance(values.dtype, pd.CategoricalDtype):
            numbers = pd.to_numeric(values.astype(str).where(values.notna()), errors="coerce")
        else:
            numbers = values.astype(float)
        missing = numbers.isna().to_numpy()
        columns.append(numbers.fillna(numbers.median()).to_numpy(dtype=np.float64))
        names.append(str(c))
        if missing.any():
            columns.append(missing.astype(np.float64))
            names.append(f"{c}_missing")
    return np.column_stack(columns).astype(np.float32), frame[label].astype(str).to_numpy(), names


class _MlbenchTable(BuiltinDataset):
    name: str

    def info(self) -> DatasetInfo:
        obj, _, _, description = MLBENCH_TABLES[self.name]
        present = (mlbench_dir() / f"{obj}.rda").is_file()
        n, d = _SIZES[self.name]
        source = f"{DEFAULT_DIR}/{obj}.rda"
        return DatasetInfo(self.name, description, n, (d,), 2, source, present, "" if present else HINT)

    def load_all(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
        obj, label, id_column, description = MLBENCH_TABLES[self.name]
        frame = load_frame(self.name, data_dir=data_dir)
        X, raw, names = _numeric(frame, label, id_column)
        classes = sorted(set(raw))
        return Dataset(
            name=self.name,
            X=X,
            y=np.searchsorted(classes, raw),
            n_classes=len(classes),
            class_names=classes,
            description=description,
            source=str(mlbench_dir(data_dir) / f"{obj}.rda"),
            features=names,
        )


@DATASETS.register("pima-diabetes")
class PimaDiabetes(_MlbenchTable):
    """Pima Indians diabetes (``PimaIndiansDiabetes2`` of r-cran-mlbench); see the module docstring."""

    name = "pima-diabetes"


@DATASETS.register("breast-cancer-original")
class BreastCancerOriginal(_MlbenchTable):
    """The original Wisconsin breast cancer data (``BreastCancer`` of r-cran-mlbench); see the module docstring."""

    name = "breast-cancer-original"
