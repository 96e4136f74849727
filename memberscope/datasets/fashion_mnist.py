"""Fashion-MNIST from IDX files (Debian package ``dataset-fashion-mnist``), train and test together."""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._registry import register
from memberscope.exceptions import DataUnavailableError

__all__ = ["load_fashion_mnist", "read_idx", "find_fashion_mnist_dir", "DEFAULT_DIR", "ENV_VAR"]

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "MEMBERSCOPE_FASHION_MNIST_DIR"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dimension; images: 3 dimensions


def _locate(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_fashion_mnist_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding the four IDX files, or :class:`DataUnavailableError` saying what to do."""
    candidates = [Path(data_dir)] if data_dir else ([Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else [])
    candidates = candidates or [Path(DEFAULT_DIR)]
    for folder in candidates:
        if all(_locate(folder, stem) for stem in FILES):
            return folder
    where = candidates[0]
    missing = [stem for stem in FILES if _locate(where, stem) is None]
    raise DataUnavailableError(
        f"Fashion-MNIST files not found in {str(where)!r} (missing: {', '.join(m + '[.gz]' for m in missing)}). "
        f"Install them with `sudo apt-get install dataset-fashion-mnist` (they land in {DEFAULT_DIR}), "
        f"or pass --data-dir DIR / set {ENV_VAR}=DIR to a folder holding those four files."
    )


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (optionally gzip-compressed) of unsigned bytes."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataUnavailableError(f"cannot read IDX file {str(path)!r}: {exc}") from None
    if len(raw) < 8:
        raise DataUnavailableError(f"IDX file {str(path)!r} is truncated ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise DataUnavailableError(f"{str(path)!r} is not an IDX file of unsigned bytes (magic number {magic}; "
                                   "expected 2049 or 2051)")
    ndim = _MAGIC[magic]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise DataUnavailableError(f"IDX file {str(path)!r} holds {len(raw) - offset} values but its header "
                                   f"promises {expected} ({'×'.join(map(str, dims))})")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


@functools.lru_cache(maxsize=2)
def _read_all(folder: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = [read_idx(_locate(Path(folder), stem)) for stem in FILES]
    images = np.concatenate([arrays[0], arrays[2]])
    labels = np.concatenate([arrays[1], arrays[3]])
    if len(images) != len(labels):
        raise DataUnavailableError(f"Fashion-MNIST in {folder!r}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _info() -> DatasetInfo:
    try:
        find_fashion_mnist_dir()
        ok, hint = True, ""
    except DataUnavailableError:
        ok, hint = False, f"apt-get install dataset-fashion-mnist, or set {ENV_VAR}"
    return DatasetInfo("fashion-mnist", "Zalando clothing, 28×28 grey images (train + test)", 70000, (1, 28, 28), 10,
                       "Debian dataset-fashion-mnist", ok, hint)


@register("fashion-mnist", _info)
def load_fashion_mnist(*, data_dir=None, seed: int = 0, n_records=None) -> Dataset:
    folder = find_fashion_mnist_dir(data_dir)
    images, labels = _read_all(str(folder))
    return Dataset(name="fashion-mnist", X=(images[:, None].astype(np.float32) / 255.0), y=labels, n_classes=10,
                   class_names=list(CLASS_NAMES), description=_info().description, source=str(folder))
