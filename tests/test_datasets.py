import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memberscope import datasets
from memberscope.datasets import DATASETS, Dataset
from memberscope.datasets._idx import read_idx
from memberscope.datasets.fashion_mnist import DEFAULT_DIR, ENV_VAR, FILES
from memberscope.exceptions import (
    DataUnavailableError,
    InvalidInputError,
    MissingDependencyError,
    UnknownNameError,
)

BUILTINS = {"digits", "breast-cancer", "fashion-mnist", "purchase-synthetic", "pima-diabetes", "breast-cancer-original"}
REAL_FASHION_PRESENT = all(
    (Path(DEFAULT_DIR) / stem).is_file() or (Path(DEFAULT_DIR) / f"{stem}.gz").is_file() for stem in FILES
)


# --- helpers ------------------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return (
        magic.to_bytes(4, "big")
        + b"".join(d.to_bytes(4, "big") for d in array.shape)
        + array.astype(np.uint8).tobytes()
    )


def _write_idx(path: Path, array: np.ndarray, magic: int, *, compress: bool) -> Path:
    data = _idx_bytes(array, magic)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _fake_fashion(folder: Path, *, compress: bool, n_train: int = 12, n_test: int = 5):
    """Tiny Fashion-MNIST IDX files; returns the raw images and labels, train then test."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for split, n in (("train", n_train), ("t10k", n_test)):
        img, lab = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
        _write_idx(folder / f"{split}-images-idx3-ubyte", img, 2051, compress=compress)
        _write_idx(folder / f"{split}-labels-idx1-ubyte", lab, 2049, compress=compress)
        images.append(img)
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture
def no_fashion_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


# --- package surface -----------------------------------------------------------------------------


def test_public_surface():
    assert sorted(datasets.__all__) == [
        "DATASETS", "Dataset", "DatasetInfo", "available", "load", "load_frame", "load_table", "read_frame",
    ]  # fmt: skip


def test_import_is_light():
    code = (
        "import sys, memberscope.datasets; "
        "print([m for m in ('sklearn', 'pandas', 'pyarrow', 'torch', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_available_lists_all_builtins_and_matches_registry():
    infos = {info.name: info for info in datasets.available()}
    assert set(infos) == BUILTINS == set(DATASETS.names())
    for name, info in infos.items():
        assert DATASETS.get(name)().info().name == name
        assert info.n_classes and info.feature_shape and info.description and info.source
    assert infos["digits"].available and infos["purchase-synthetic"].available


def test_available_reports_fashion_mnist_files(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "empty"))
    info = {i.name: i for i in datasets.available()}["fashion-mnist"]
    assert not info.available and "dataset-fashion-mnist" in info.hint and "--data-dir" in info.hint
    _fake_fashion(tmp_path / "f", compress=True)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "f"))
    info = {i.name: i for i in datasets.available()}["fashion-mnist"]
    assert info.available and info.hint == "" and info.source == str(tmp_path / "f")


# --- sklearn built-ins ---------------------------------------------------------------------------


def test_digits():
    ds = datasets.load("digits")
    assert ds.X.shape == (1797, 1, 8, 8) and ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.is_image and ds.feature_shape == (1, 8, 8) and ds.n_records == 1797
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.n_classes == 10 and ds.class_names == [str(k) for k in range(10)] and set(ds.y) == set(range(10))
    assert ds.groups is None


def test_breast_cancer():
    ds = datasets.load("breast-cancer")
    assert ds.X.shape == (569, 30) and ds.X.dtype == np.float32 and not ds.is_image
    assert ds.n_classes == 2 and ds.class_names == ["malignant", "benign"] and np.bincount(ds.y).tolist() == [212, 357]
    np.testing.assert_allclose(ds.X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.X.std(axis=0), 1, atol=1e-4)


# --- fashion-mnist -------------------------------------------------------------------------------


@pytest.mark.skipif(
    not REAL_FASHION_PRESENT, reason=f"Debian package dataset-fashion-mnist is not installed ({DEFAULT_DIR})"
)
def test_fashion_mnist_real_files(no_fashion_env):
    from memberscope.datasets.fashion_mnist import _parse

    ds = datasets.load("fashion-mnist")
    assert ds.X.shape == (70_000, 1, 28, 28) and ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert np.bincount(ds.y).tolist() == [7000] * 10 and ds.class_names[0] == "T-shirt/top"
    assert ds.source == DEFAULT_DIR
    hits = _parse.cache_info().hits
    small = datasets.load("fashion-mnist", n_records=500, seed=1)  # parsed arrays come from the cache
    assert _parse.cache_info().hits == hits + 1 and small.X.shape == (500, 1, 28, 28)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_fashion_mnist_loader_on_tiny_idx_files(tmp_path, monkeypatch, compress):
    images, labels = _fake_fashion(tmp_path / "f", compress=compress)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))  # data_dir wins over the variable
    ds = datasets.load("fashion-mnist", data_dir=tmp_path / "f")
    assert ds.X.shape == (17, 1, 28, 28) and ds.X.dtype == np.float32 and ds.is_image
    np.testing.assert_array_equal(ds.X[:, 0], (images / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.y, labels)
    assert ds.class_names[-1] == "Ankle boot" and ds.n_classes == 10
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "f"))
    from_env = datasets.load("fashion-mnist")
    assert from_env.n_records == 17 and from_env.fingerprint() == ds.fingerprint()


def test_fashion_mnist_parsed_copy_is_reused_by_later_processes_and_never_trusted_blindly(tmp_path, monkeypatch):
    """The parsed IDX bytes go to the cache folder; a later process (the in-process cache cleared) reads them back
    without parsing, the same arrays; a damaged copy is ignored and the files are parsed again."""
    from memberscope.datasets import fashion_mnist

    images, labels = _fake_fashion(tmp_path / "f", compress=True)
    first = datasets.load("fashion-mnist", data_dir=tmp_path / "f")
    copies = sorted((Path(os.environ["MEMBERSCOPE_CACHE_DIR"]) / "datasets").glob("fashion-mnist-*.npy"))
    assert len(copies) == 2
    parsed = []
    real = fashion_mnist._parse_idx
    monkeypatch.setattr(fashion_mnist, "_parse_idx", lambda files: parsed.append(1) or real(files))
    fashion_mnist._parse.cache_clear()
    again = datasets.load("fashion-mnist", data_dir=tmp_path / "f")
    assert parsed == [] and again.X.tobytes() == first.X.tobytes() and again.fingerprint() == first.fingerprint()
    np.testing.assert_array_equal(again.X[:, 0], (images / 255.0).astype(np.float32))
    np.testing.assert_array_equal(again.y, labels)
    np.save(copies[1], np.zeros((3, 28, 28), dtype=np.uint8))  # images of the wrong count for the labels
    fashion_mnist._parse.cache_clear()
    third = datasets.load("fashion-mnist", data_dir=tmp_path / "f")
    assert parsed == [1] and third.X.tobytes() == first.X.tobytes()
    (tmp_path / "f" / "t10k-labels-idx1-ubyte.gz").touch()  # a changed file is another key: parsed again
    os.utime(tmp_path / "f" / "t10k-labels-idx1-ubyte.gz", ns=(1, 1))
    fashion_mnist._parse.cache_clear()
    datasets.load("fashion-mnist", data_dir=tmp_path / "f")
    assert parsed == [1, 1]


def test_records_are_checked_for_nan_and_infinity_whatever_their_dtype():
    for dtype in (np.float32, np.float64):
        for bad in (np.nan, np.inf, -np.inf):
            X = np.zeros((4, 3), dtype=dtype)
            X[2, 1] = bad
            with pytest.raises(InvalidInputError, match="1 records have NaN or infinite features"):
                datasets.Dataset(name="t", X=X, y=np.zeros(4, int), n_classes=1, class_names=["a"])
    huge = np.full((4, 3), np.finfo(np.float64).max)  # finite values whose float64 sum overflows: accepted
    assert datasets.Dataset(name="t", X=huge, y=np.zeros(4, int), n_classes=1, class_names=["a"], exact=True)


def test_fashion_mnist_mixed_gz_and_plain(tmp_path):
    _fake_fashion(tmp_path, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").rename(tmp_path / "t10k-labels-idx1-ubyte.plain")
    data = (tmp_path / "t10k-labels-idx1-ubyte.plain").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(data))
    assert datasets.load("fashion-mnist", data_dir=str(tmp_path)).n_records == 17


def test_fashion_mnist_missing_files_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(DataUnavailableError) as exc:
        datasets.load("fashion-mnist", data_dir=str(tmp_path / "nowhere"))
    text = str(exc.value)
    for needle in ("sudo apt-get install dataset-fashion-mnist", "--data-dir", ENV_VAR, str(tmp_path / "nowhere")):
        assert needle in text
    assert "train-images-idx3-ubyte[.gz]" in text and "does not exist" in text
    # a folder with some files: names what is missing, and says the env var chose the folder
    (tmp_path / "partial").mkdir()
    _write_idx(tmp_path / "partial" / "train-labels-idx1-ubyte", np.zeros(3), 2049, compress=False)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "partial"))
    with pytest.raises(DataUnavailableError, match=rf"\${ENV_VAR}.*missing: train-images-idx3-ubyte, t10k-images"):
        datasets.load("fashion-mnist")


@pytest.mark.parametrize(
    ("stem", "content", "message"),
    [
        ("train-images-idx3-ubyte", _idx_bytes(np.zeros((12, 28, 28)), 2051)[:-100], "header promises 9408"),
        ("train-images-idx3-ubyte", _idx_bytes(np.zeros(12), 2049), "magic number 2049.*expected 2051"),
        ("t10k-labels-idx1-ubyte", b"\x00\x00\x0d\x01" + b"\x00" * 8, "not an IDX file of unsigned bytes"),
        ("t10k-labels-idx1-ubyte", b"\x1f\x8bnot really gzip", "cannot read IDX file"),
        ("t10k-labels-idx1-ubyte", _idx_bytes(np.full(5, 11), 2049), "label 11; expected labels 0..9"),
        ("t10k-labels-idx1-ubyte", _idx_bytes(np.zeros(4), 2049), "5 images but .* 4 labels"),
        ("t10k-images-idx3-ubyte", _idx_bytes(np.zeros((5, 8, 8)), 2051), "8×8 pixels; expected 28×28"),
    ],
    ids=["truncated", "labels-as-images", "bad-magic", "bad-gzip", "label-range", "count-mismatch", "image-size"],
)
def test_corrupt_fashion_mnist_file_is_named(tmp_path, stem, content, message):
    _fake_fashion(tmp_path, compress=False)
    (tmp_path / stem).write_bytes(content)
    with pytest.raises(DataUnavailableError, match=message) as exc:
        datasets.load("fashion-mnist", data_dir=tmp_path)
    assert stem in str(exc.value)


def test_read_idx_handles_short_files(tmp_path):
    (tmp_path / "x").write_bytes(b"\x00\x00")
    with pytest.raises(DataUnavailableError, match="truncated"):
        read_idx(tmp_path / "x")
    (tmp_path / "x").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x01")
    with pytest.raises(DataUnavailableError, match="truncated inside its header"):
        read_idx(tmp_path / "x")
    assert read_idx(_write_idx(tmp_path / "ok", np.arange(6).reshape(2, 3), 2050, compress=True)).shape == (2, 3)


# --- purchase-synthetic --------------------------------------------------------------------------


def test_purchase_synthetic_is_seeded_and_binary():
    a = datasets.load("purchase-synthetic", n_records=3000, seed=0)
    b = datasets.load("purchase-synthetic", n_records=3000, seed=0)
    c = datasets.load("purchase-synthetic", n_records=3000, seed=1)
    assert a.X.tobytes() == b.X.tobytes() and a.y.tobytes() == b.y.tobytes() and a.fingerprint() == b.fingerprint()
    assert not np.array_equal(a.X, c.X) and not np.array_equal(a.y, c.y)
    assert a.X.shape == (3000, 600) and a.X.dtype == np.float32 and a.y.dtype == np.int64
    assert set(np.unique(a.X)) == {0.0, 1.0} and 0.02 < a.X.mean() < 0.2  # sparse, like purchase data
    assert a.n_classes == 100 and len(a.class_names) == 100
    longer = datasets.load("purchase-synthetic", n_records=5000, seed=0)
    np.testing.assert_array_equal(longer.X[:3000], a.X)  # a prefix does not depend on n_records


def test_purchase_synthetic_default_size_and_learnability():
    from sklearn.linear_model import LogisticRegression

    full = datasets.load("purchase-synthetic")
    assert full.n_records == 20_000 and full.feature_shape == (600,)
    sizes = np.bincount(full.y, minlength=100)
    assert (sizes > 0).all() and sizes.max() < 5 * sizes.min()  # all classes, mildly unequal
    model = LogisticRegression(max_iter=200).fit(full.X[:4000], full.y[:4000])
    test_acc = model.score(full.X[4000:6000], full.y[4000:6000])
    assert 0.3 < test_acc < 0.95  # far above 1% chance, far from perfect (measured: 0.52)
    assert model.score(full.X[:4000], full.y[:4000]) > test_acc + 0.2  # a real generalization gap


# --- user tables -----------------------------------------------------------------------------------


@pytest.fixture
def people():
    import pandas as pd

    return pd.DataFrame(
        {
            "age": [30, 40, 50, 60, 70],
            "income": [1.0, 2.0, 3.0, 4.0, 5.5],
            "member": [True, False, True, False, True],
            "outcome": ["yes", "no", "yes", "maybe", "no"],
            "region": ["n", "s", "n", "s", "e"],
        }
    )


def _check_people(ds: Dataset, name: str):
    assert ds.name == name and ds.X.shape == (5, 3) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X[:, 0], [30, 40, 50, 60, 70])
    np.testing.assert_array_equal(ds.X[:, 2], [1, 0, 1, 0, 1])
    assert ds.class_names == ["maybe", "no", "yes"] and ds.y.tolist() == [2, 1, 2, 0, 1] and ds.n_classes == 3
    assert ds.groups.tolist() == ["n", "s", "n", "s", "e"]


def test_csv_round_trip(tmp_path, people):
    people.to_csv(tmp_path / "people.csv", index=False)
    _check_people(datasets.load(str(tmp_path / "people.csv"), label_column="outcome", group_column="region"), "people")
    just_age = datasets.load_table(tmp_path / "people.csv", label_column="outcome", feature_columns=["age"])
    assert just_age.X.shape == (5, 1) and just_age.groups is None


def test_parquet_round_trip(tmp_path, people):
    pytest.importorskip("pyarrow", reason="pyarrow (memberscope[parquet]) is not installed")
    people.to_parquet(tmp_path / "people.parquet")
    _check_people(datasets.load(tmp_path / "people.parquet", label_column="outcome", group_column="region"), "people")


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'memberscope\[parquet\]'"):
        datasets.load(str(tmp_path / "t.parquet"))


def test_npz_round_trip_and_integer_labels(tmp_path):
    X = np.arange(24, dtype=np.float64).reshape(4, 6)
    np.savez(tmp_path / "arr.npz", X=X, y=np.array([7, 3, 7, 10]), groups=np.array(["a", "b", "a", "c"]))
    ds = datasets.load(str(tmp_path / "arr.npz"))
    np.testing.assert_array_equal(ds.X, X.astype(np.float32))
    assert ds.class_names == ["3", "7", "10"] and ds.y.tolist() == [1, 0, 1, 2]  # numeric order, not string order
    assert ds.groups.tolist() == ["a", "b", "a", "c"] and ds.name == "arr"
    np.savez(tmp_path / "img.npz", X=np.zeros((3, 1, 4, 4)), y=np.array(["cat", "dog", "cat"]))
    img = datasets.load(str(tmp_path / "img.npz"))
    assert img.is_image and img.class_names == ["cat", "dog"] and img.groups is None


def test_table_errors_name_the_problem(tmp_path):
    t = tmp_path / "t.csv"
    t.write_text("a,b,label,g\n1,x,0,n\n2,y,1,s\n")
    with pytest.raises(
        InvalidInputError, match=r"feature columns \['b'\] .* not numeric; encode them .*feature_columns"
    ):
        datasets.load(str(t), group_column="g")
    assert datasets.load(str(t), group_column="g", feature_columns=["a"]).X.shape == (2, 1)
    with pytest.raises(InvalidInputError, match=r"label column 'target' is not in .*its columns are: a, b, label, g"):
        datasets.load(str(t), label_column="target")
    with pytest.raises(InvalidInputError, match=r"group column 'region' is not in .*its columns are: a, b, label, g"):
        datasets.load(str(t), group_column="region")
    with pytest.raises(InvalidInputError, match=r"feature columns \['zz'\] are not in"):
        datasets.load_table(t, feature_columns=["a", "zz"])
    with pytest.raises(InvalidInputError, match=r"feature_columns \['label'\] .* are the label, group or id column"):
        datasets.load_table(t, feature_columns=["a", "label"])


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("nan.csv", "a,b,label\n1,2,0\n,3,1\n4,5,1\n", r"missing \(NaN\) or infinite .* 1 rows in columns \['a'\]"),
        ("inf.csv", "a,label\n1,0\ninf,1\n", r"infinite feature values .*first at row 1"),
        ("nolabel.csv", "a,label\n1,0\n2,\n", "label column 'label' .* 1 missing values"),
        ("empty.csv", "a,label\n", "has no records"),
        ("blank.csv", "", r"cannot read table .*blank\.csv.*expected a \.csv, \.parquet, \.rda/\.rds or \.npz"),
        ("onlylabel.csv", "label\n0\n1\n", "no feature columns"),
        ("junk.parquet", "this is not parquet", r"cannot read table .*junk\.parquet"),
        ("junk.npz", "this is not npz", r"cannot read table .*junk\.npz"),
        (
            "notes.txt",
            "a,label\n1,0\n",
            r"unknown extension '\.txt'; expected a \.csv, \.parquet, \.rda/\.rds or \.npz",
        ),
    ],
)
def test_bad_table_files(tmp_path, filename, content, message):
    (tmp_path / filename).write_text(content)
    with pytest.raises(InvalidInputError, match=message) as exc:
        datasets.load(str(tmp_path / filename))
    assert filename in str(exc.value)


def test_bad_npz_contents(tmp_path):
    np.savez(tmp_path / "bad.npz", features=np.ones((2, 2)))
    with pytest.raises(InvalidInputError, match=r"lacks arrays \['X', 'y'\]"):
        datasets.load(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "len.npz", X=np.ones((3, 2)), y=np.zeros(2))
    with pytest.raises(InvalidInputError, match=r"got X \(3, 2\) and y \(2,\)"):
        datasets.load(str(tmp_path / "len.npz"))
    np.savez(tmp_path / "text.npz", X=np.array([["a", "b"]]), y=np.zeros(1))
    with pytest.raises(InvalidInputError, match="has dtype <U1; expected numbers"):
        datasets.load(str(tmp_path / "text.npz"))
    np.savez(tmp_path / "nan.npz", X=np.array([[1.0], [np.nan]]), y=np.zeros(2))
    with pytest.raises(InvalidInputError, match=r"1 rows .*first at row 1"):
        datasets.load(str(tmp_path / "nan.npz"))
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(InvalidInputError, match=r"single \.npy array"):
        datasets.load(str(tmp_path / "single.npz"))


def test_missing_paths_and_unknown_names(tmp_path):
    with pytest.raises(
        InvalidInputError, match=r"missing\.csv' does not exist; expected a \.csv, \.parquet, \.rda/\.rds or \.npz"
    ):
        datasets.load(str(tmp_path / "missing.csv"))
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(InvalidInputError, match="is not a file"):
        datasets.load(tmp_path / "folder.csv")
    with pytest.raises(UnknownNameError) as exc:
        datasets.load("cifar")
    assert "unknown dataset 'cifar'" in str(exc.value)
    assert "digits, fashion-mnist, pima-diabetes, purchase-synthetic" in str(exc.value)
    assert isinstance(exc.value, InvalidInputError)


# --- Dataset, subsets, fingerprints ----------------------------------------------------------------


def test_dataset_validation():
    ok = {"name": "t", "X": np.zeros((3, 2)), "y": np.array([0, 1, 1]), "n_classes": 2, "class_names": ["a", "b"]}
    Dataset(**ok)
    with pytest.raises(InvalidInputError, match=r"got X \(3, 2\) and y \(2,\)"):
        Dataset(**{**ok, "y": np.array([0, 1])})
    with pytest.raises(InvalidInputError, match=r"labels must lie in 0..1; 1 do not \(first at row 2: 5\)"):
        Dataset(**{**ok, "y": np.array([0, 1, 5])})
    with pytest.raises(InvalidInputError, match="whole numbers"):
        Dataset(**{**ok, "y": np.array([0, 0.5, 1])})
    with pytest.raises(InvalidInputError, match="expected 2 class_names"):
        Dataset(**{**ok, "class_names": ["a"]})
    with pytest.raises(InvalidInputError, match=r"expected groups of shape \(3,\)"):
        Dataset(**{**ok, "groups": np.array(["g"])})
    X = np.zeros((3, 2))
    X[1, 0], X[2, 1] = np.nan, np.inf
    with pytest.raises(
        InvalidInputError, match=r"dataset 't': 2 records have NaN or infinite features \(first at row 1\)"
    ):
        Dataset(**{**ok, "X": X})


def test_n_records_subsets_are_seeded(tmp_path):
    a = datasets.load("digits", n_records=100, seed=3)
    b = datasets.load("digits", n_records=100, seed=3)
    c = datasets.load("digits", n_records=100, seed=4)
    assert a.n_records == 100 and a.fingerprint() == b.fingerprint() != c.fingerprint()
    full = datasets.load("digits")
    rows = [np.flatnonzero((full.X == x).all(axis=(1, 2, 3)))[0] for x in a.X[:5]]
    assert rows == sorted(rows)  # records keep their original order
    with pytest.raises(InvalidInputError, match=r"n_records=5000 exceeds the 1797 records of 'digits'"):
        datasets.load("digits", n_records=5000)
    with pytest.raises(InvalidInputError, match="n_records must be a positive integer or None; got 0"):
        datasets.load("digits", n_records=0)
    with pytest.raises(InvalidInputError, match="seed must be a non-negative integer; got -1"):
        datasets.load("digits", seed=-1)
    np.savez(tmp_path / "t.npz", X=np.arange(20.0).reshape(10, 2), y=np.arange(10) % 2, groups=np.arange(10))
    table = datasets.load(str(tmp_path / "t.npz"), n_records=4, seed=1)
    assert table.n_records == 4 and table.groups.tolist() == [str(int(v) // 2) for v in table.X[:, 0]]


def test_subset_keeps_metadata():
    ds = Dataset(
        name="t", X=np.arange(8.0).reshape(4, 2), y=[0, 1, 1, 0], n_classes=2, class_names=["a", "b"],
        groups=["p", "q", "p", "q"], description="d", source="s",
    )  # fmt: skip
    sub = ds.subset([3, 1])
    assert sub.X.tolist() == [[6, 7], [2, 3]] and sub.y.tolist() == [0, 1] and sub.groups.tolist() == ["q", "q"]
    assert (sub.name, sub.class_names, sub.n_classes, sub.description, sub.source) == ("t", ["a", "b"], 2, "d", "s")
    assert ds.subset(np.array([True, False, False, True])).y.tolist() == [0, 0]
    with pytest.raises(InvalidInputError, match=r"bad subset indices .*expected rows in 0..3"):
        ds.subset([7])


def test_fingerprint_is_stable_and_sensitive():
    base = datasets.load("breast-cancer")
    fp = base.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0 and datasets.load("breast-cancer").fingerprint() == fp
    changed = datasets.load("breast-cancer")
    changed.X[100, 5] += 1e-3
    assert changed.fingerprint() != fp  # computed afresh, so an in-place edit shows
    relabelled = datasets.load("breast-cancer")
    relabelled.y[0] = 1 - relabelled.y[0]
    renamed = datasets.load("breast-cancer")
    renamed.name = "other"
    grouped = Dataset(**{**vars(base), "groups": np.zeros(569, dtype=int)})
    regrouped = Dataset(**{**vars(base), "groups": np.r_[1, np.zeros(568, dtype=int)]})
    prints = {fp, relabelled.fingerprint(), renamed.fingerprint(), grouped.fingerprint(), regrouped.fingerprint()}
    assert len(prints) == 5


def test_clinical_tables_of_r_cran_mlbench():
    """Debian's r-cran-mlbench (installed by scripts/setup.sh), read from its .rda files without R."""
    frame = datasets.load_frame("breast-cancer-original")
    assert frame.shape == (699, 11) and frame["Bare.nuclei"].isna().sum() == 16
    assert str(frame["Cl.thickness"].dtype) == "category" and set(frame["Class"]) == {"benign", "malignant"}
    assert frame.drop(columns="Id").duplicated().sum() == 236  # rows that copy another: ill-posed membership
    bc = datasets.load("breast-cancer-original")
    assert (
        bc.X.shape == (699, 10) and bc.class_names == ["benign", "malignant"] and "Bare.nuclei_missing" in bc.features
    )
    assert np.isfinite(bc.X).all() and bc.X[frame["Bare.nuclei"].isna().to_numpy(), -1].min() == 1.0
    pima = datasets.load("pima-diabetes")
    assert pima.X.shape == (768, 13) and pima.class_names == ["neg", "pos"]
    raw = datasets.load_frame("pima-diabetes")
    assert raw.isna().sum().sum() == 652
    np.testing.assert_allclose(
        pima.X[:, pima.features.index("glucose")], raw["glucose"].fillna(raw["glucose"].median())
    )


def test_r_data_files_are_user_tables(tmp_path):
    import shutil

    from memberscope.datasets.mlbench import mlbench_dir

    shutil.copy(mlbench_dir() / "PimaIndiansDiabetes.rda", tmp_path / "pima.rda")
    table = datasets.load(str(tmp_path / "pima.rda"), label_column="diabetes")
    assert table.X.shape == (768, 8) and table.class_names == ["neg", "pos"]
    np.testing.assert_array_equal(table.ids, np.arange(768))
    with pytest.raises(InvalidInputError, match="holds 0 data frames"):
        datasets.read_frame(_write_rds_of_a_vector(tmp_path))


def _write_rds_of_a_vector(folder):
    """An .rda holding a character vector only (built with rdata's writer)."""
    import rdata

    path = folder / "vector.rda"
    rdata.write_rda(path, {"words": ["a", "b"]})
    return path
