import gzip

import numpy as np
import pytest

from memberscope import datasets
from memberscope.datasets.fashion_mnist import ENV_VAR, read_idx
from memberscope.exceptions import DataUnavailableError, InvalidInputError, UnknownNameError


def _write_idx(path, array, magic, compress):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def _fake_fashion(folder, compress):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 12), ("t10k", 5)):
        _write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051, compress)
        _write_idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n), 2049, compress)


def test_builtin_tables_and_images():
    digits = datasets.load("digits")
    assert digits.X.shape == (1797, 1, 8, 8) and digits.is_image
    assert digits.X.dtype == np.float32 and 0 <= digits.X.min() and digits.X.max() <= 1
    cancer = datasets.load("breast-cancer")
    assert cancer.X.shape == (569, 30) and cancer.n_classes == 2
    np.testing.assert_allclose(cancer.X.mean(0), 0, atol=1e-5)


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_loader_on_synthetic_idx(tmp_path, compress, monkeypatch):
    _fake_fashion(tmp_path / "f", compress)
    ds = datasets.load("fashion-mnist", data_dir=str(tmp_path / "f"))
    assert ds.X.shape == (17, 1, 28, 28) and ds.y.shape == (17,)
    assert ds.class_names[-1] == "Ankle boot"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "f"))
    assert datasets.load("fashion-mnist").n_records == 17


def test_fashion_mnist_real_files(fashion_mnist_available):
    if not fashion_mnist_available:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    ds = datasets.load("fashion-mnist")
    assert ds.X.shape == (70000, 1, 28, 28) and np.bincount(ds.y).tolist() == [7000] * 10


def test_fashion_mnist_missing_says_what_to_do(tmp_path):
    with pytest.raises(DataUnavailableError) as exc:
        datasets.load("fashion-mnist", data_dir=str(tmp_path / "nowhere"))
    text = str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in text and "--data-dir" in text and ENV_VAR in text


def test_corrupt_idx_is_named(tmp_path):
    bad = tmp_path / "x-idx3-ubyte"
    dims = b"".join(d.to_bytes(4, "big") for d in (5, 28, 28))
    bad.write_bytes(b"\x00\x00\x08\x03" + dims + b"\x00" * 100)
    with pytest.raises(DataUnavailableError, match="header"):
        read_idx(bad)
    bad.write_bytes(b"\x00\x00\x00\x01abcd")
    with pytest.raises(DataUnavailableError, match="magic number"):
        read_idx(bad)


def test_purchase_synthetic_is_seeded_binary_and_learnable():
    a = datasets.load("purchase-synthetic", n_records=3000, seed=0)
    b = datasets.load("purchase-synthetic", n_records=3000, seed=0)
    c = datasets.load("purchase-synthetic", n_records=3000, seed=1)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y) and not np.array_equal(a.X, c.X)
    assert a.X.shape == (3000, 600) and set(np.unique(a.X)) == {0.0, 1.0}
    full = datasets.load("purchase-synthetic")
    assert full.n_records == 20000 and len(np.unique(full.y)) == 100
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=200).fit(full.X[:4000], full.y[:4000])
    test_acc = model.score(full.X[4000:6000], full.y[4000:6000])
    assert 0.3 < test_acc < 0.95  # far above 1% chance, far from perfect


def test_user_tables_round_trip(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"age": [30, 40, 50, 60], "income": [1.0, 2.0, 3.0, 4.0],
                          "outcome": ["yes", "no", "yes", "no"], "region": ["n", "s", "n", "s"]})
    frame.to_csv(tmp_path / "people.csv", index=False)
    ds = datasets.load(str(tmp_path / "people.csv"), label_column="outcome", group_column="region")
    assert ds.X.shape == (4, 2) and ds.class_names == ["no", "yes"] and ds.y.tolist() == [1, 0, 1, 0]
    assert ds.groups.tolist() == ["n", "s", "n", "s"] and ds.name == "people"
    frame.to_parquet(tmp_path / "people.parquet")
    pq = datasets.load(str(tmp_path / "people.parquet"), label_column="outcome", group_column="region")
    np.testing.assert_array_equal(pq.X, ds.X)
    np.savez(tmp_path / "arr.npz", X=np.ones((3, 4)), y=np.array([0, 1, 1]), groups=np.array(["a", "b", "a"]))
    npz = datasets.load(str(tmp_path / "arr.npz"))
    assert npz.X.shape == (3, 4) and npz.groups.tolist() == ["a", "b", "a"]


def test_user_table_errors(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,label\n1,x,0\n2,y,1\n")
    with pytest.raises(InvalidInputError, match=r"feature columns \['b'\].*not numeric"):
        datasets.load(str(tmp_path / "t.csv"))
    with pytest.raises(InvalidInputError, match="label column 'target' is not in .*its columns are: a, b, label"):
        datasets.load(str(tmp_path / "t.csv"), label_column="target")
    (tmp_path / "n.csv").write_text("a,label\n1,0\n,1\n")
    with pytest.raises(InvalidInputError, match="NaN or infinite features"):
        datasets.load(str(tmp_path / "n.csv"))
    with pytest.raises(InvalidInputError, match="does not exist"):
        datasets.load(str(tmp_path / "missing.csv"))
    np.savez(tmp_path / "bad.npz", features=np.ones((2, 2)))
    with pytest.raises(InvalidInputError, match=r"lacks arrays \['X', 'y'\]"):
        datasets.load(str(tmp_path / "bad.npz"))
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar'"):
        datasets.load("cifar")


def test_subset_and_fingerprint():
    digits = datasets.load("digits", n_records=100, seed=3)
    again = datasets.load("digits", n_records=100, seed=3)
    assert digits.n_records == 100 and np.array_equal(digits.y, again.y)
    assert digits.fingerprint() == again.fingerprint()
    changed = digits.subset(np.arange(100))
    changed.X[0, 0, 0, 0] += 0.5
    changed._fingerprint = None
    assert changed.fingerprint() != digits.fingerprint()
    with pytest.raises(InvalidInputError, match="n_records=5000 exceeds the 1797 records"):
        datasets.load("digits", n_records=5000)


def test_available_lists_all_builtins():
    names = {info.name for info in datasets.available()}
    assert names == {"digits", "breast-cancer", "fashion-mnist", "purchase-synthetic"}
