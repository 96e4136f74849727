"""``fashion-mnist``: Zalando's clothing images, train and test IDX files together (70,000 records).

The files come from the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
or from any folder holding the four IDX files, gzip-compressed or not. Nothing is ever downloaded.

Decompressing and parsing the files takes about 0.6 CPU seconds; the parsed bytes are therefore also kept as two
``.npy`` files in memberscope's cache folder (:func:`~memberscope.cache.default_cache_dir`, ``datasets/``), keyed
by the files' paths, sizes and modification times, and read back by later processes in a few milliseconds. A cache
file that is missing, unreadable or of the wrong shape is ignored (the IDX files are parsed again); a cache folder
that cannot be written is no error.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from memberscope.datasets._registry import DATASETS, BuiltinDataset
from memberscope.exceptions import DataUnavailableError

__all__ = ["CLASS_NAMES", "DEFAULT_DIR", "ENV_VAR", "FILES", "FashionMNIST", "find_fashion_mnist_dir"]

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "MEMBERSCOPE_FASHION_MNIST_DIR"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_DESCRIPTION = "Zalando clothing, 28×28 grey images in 10 classes (train + test)"
_HINT = (
    "sudo apt-get install dataset-fashion-mnist, or pass --data-dir DIR / "
    f"set {ENV_VAR}=DIR to a folder holding the four IDX files"
)


def find_fashion_mnist_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding the four Fashion-MNIST IDX files.

    Looks in ``data_dir`` if given, else in ``$MEMBERSCOPE_FASHION_MNIST_DIR`` if set, else in
    ``/usr/share/datasets/fashion-mnist``; only there, with no fallback. Each file may be plain or ``.gz``.

    Raises
    ------
    DataUnavailableError
        If a file is missing; the message says where it looked, for what, and how to fix it.
    """
    if data_dir is not None and str(data_dir) != "":
        folder, why = Path(data_dir), "the data_dir / --data-dir argument"
    elif os.environ.get(ENV_VAR):
        folder, why = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        folder, why = Path(DEFAULT_DIR), "the default folder of Debian package dataset-fashion-mnist"
    missing = [stem for stem in FILES if _locate(folder, stem) is None]
    if missing:
        problem = "the folder does not exist" if not folder.is_dir() else f"missing: {', '.join(missing)}"
        raise DataUnavailableError(
            f"Fashion-MNIST is not available: looked in {str(folder)!r} (from {why}) for "
            f"{', '.join(s + '[.gz]' for s in FILES)}; {problem}. "
            f"To fix: `sudo apt-get install dataset-fashion-mnist` (installs them in {DEFAULT_DIR}), "
            f"or pass --data-dir DIR / set {ENV_VAR}=DIR to a folder containing those four files."
        )
    return folder


@DATASETS.register("fashion-mnist")
class FashionMNIST(BuiltinDataset):
    """Images ``X`` of shape (70000, 1, 28, 28) scaled to [0, 1]: the 60,000 training then 10,000 test images.

    Parsed arrays are cached in this process (keyed by the files' paths, sizes and modification
    times), so repeated loads skip reading and decompressing the files.
    """

    def info(self) -> DatasetInfo:
        try:
            source, ok, hint = str(find_fashion_mnist_dir()), True, ""
        except DataUnavailableError:
            source, ok, hint = "Debian package dataset-fashion-mnist", False, _HINT
        return DatasetInfo("fashion-mnist", _DESCRIPTION, 70_000, (1, 28, 28), 10, source, ok, hint)

    def load_all(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
        folder = find_fashion_mnist_dir(data_dir)
        stats = []
        for stem in FILES:
            path = _locate(folder, stem)
            if path is None:  # removed since find_fashion_mnist_dir looked
                raise DataUnavailableError(f"Fashion-MNIST: {stem}[.gz] is no longer in {str(folder)!r}")
            stats.append((path, path.stat()))
        images, labels = _parse(tuple((str(path), st.st_mtime_ns, st.st_size) for path, st in stats))
        X = np.empty((len(images), 1, *images.shape[1:]), dtype=np.float32)
        np.divide(images[:, None], np.float32(255.0), out=X, dtype=np.float32)  # as astype(float32) / 255, one pass
        return Dataset(
            name="fashion-mnist",
            X=X,
            y=labels,
            n_classes=10,
            class_names=list(CLASS_NAMES),
            description=_DESCRIPTION,
            source=str(folder),
        )


def _locate(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


@functools.lru_cache(maxsize=2)
def _parse(files: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) and labels (n,), uint8 and read-only, of train then test; ``files`` is (path, mtime, size).

    Read from the parsed copy in the cache folder when there is a valid one, else parsed and copied there."""
    cached = _parsed_copy(files)
    if cached is not None:
        return cached
    arrays = _parse_idx(files)
    _store_parsed_copy(files, arrays)
    return arrays


def _copy_paths(files: tuple[tuple[str, int, int], ...]) -> tuple[Path, Path]:
    from memberscope.cache import default_cache_dir

    key = hashlib.sha256(json.dumps(["fashion-mnist-idx", 1, files]).encode()).hexdigest()[:24]
    folder = default_cache_dir() / "datasets"
    return folder / f"fashion-mnist-{key}-images.npy", folder / f"fashion-mnist-{key}-labels.npy"


def _parsed_copy(files: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """The parsed arrays from the cache folder, or None when absent or not as :func:`_parse_idx` would give."""
    image_path, label_path = _copy_paths(files)
    try:
        images = np.load(image_path, allow_pickle=False)
        labels = np.load(label_path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    valid = (
        images.dtype == np.uint8
        and labels.dtype == np.uint8
        and images.ndim == 3
        and images.shape[1:] == (28, 28)
        and labels.shape == (len(images),)
        and (not labels.size or int(labels.max()) < len(CLASS_NAMES))
    )
    if not valid:
        return None
    for array in (images, labels):
        array.flags.writeable = False
    return images, labels


def _store_parsed_copy(files: tuple[tuple[str, int, int], ...], arrays: tuple[np.ndarray, np.ndarray]) -> None:
    """Write the parsed arrays to the cache folder atomically; a folder that cannot be written is skipped."""
    from memberscope.cache import _atomic_write, _save_npy

    for path, array in zip(_copy_paths(files), arrays, strict=True):
        with contextlib.suppress(OSError):
            _atomic_write(path, functools.partial(_save_npy, value=array))


def _parse_idx(files: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Parse the four IDX files (train images, train labels, test images, test labels); see :func:`_parse`."""
    paths = [Path(path) for path, _, _ in files]
    images, labels = [], []
    for image_path, label_path in (paths[0:2], paths[2:4]):
        split_images = read_idx(image_path, expected_magic=IMAGES_MAGIC)
        split_labels = read_idx(label_path, expected_magic=LABELS_MAGIC)
        if split_images.shape[1:] != (28, 28):
            raise DataUnavailableError(
                f"{str(image_path)!r} holds images of {'×'.join(map(str, split_images.shape[1:]))} pixels; "
                "expected 28×28 for Fashion-MNIST"
            )
        if len(split_images) != len(split_labels):
            raise DataUnavailableError(
                f"{str(image_path)!r} holds {len(split_images)} images but {str(label_path)!r} "
                f"holds {len(split_labels)} labels; expected one label per image"
            )
        if split_labels.size and split_labels.max() >= len(CLASS_NAMES):
            raise DataUnavailableError(
                f"{str(label_path)!r} holds label {int(split_labels.max())}; expected labels 0..{len(CLASS_NAMES) - 1}"
            )
        images.append(split_images)
        labels.append(split_labels)
    arrays = np.concatenate(images), np.concatenate(labels)
    for array in arrays:
        array.flags.writeable = False
    return arrays
