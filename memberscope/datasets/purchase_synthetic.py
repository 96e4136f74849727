"""``purchase-synthetic``: a seeded, Purchase-100-like table of 600 binary "bought it" features in 100 classes.

The real Purchase-100 (Shokri et al., 2017) clusters shoppers' purchase vectors into 100 classes.
This generator imitates it without downloading anything:

1. 24 shared *shopper archetypes*: per-item purchase probabilities drawn from Beta(0.25, 3), so
   most items are rarely bought (mean 0.077) and a few often.
2. 100 class *prototypes*: each a sparse Dirichlet(0.3) mix of archetypes, so classes share
   archetypes and overlap; plus about 6 class-specific "signature" items (1% of the 600) whose
   probability rises by U(0.1, 0.3). Probabilities are clipped to at most 0.95.
3. Mildly unequal class sizes: class frequencies from Dirichlet(12) (about ±30% around 1%).
4. Each record is its class's prototype sampled as independent Bernoulli draws, so records of a
   class differ and about 8% of the features of a record are 1.

Overlapping classes make models fit their training records far better than new ones. Measured by
hand with seed 0 (scikit-learn 1.9; 10,000 training and 10,000 test records; chance is 1%):
``MLPClassifier(hidden_layer_sizes=(256,), random_state=0)`` 100% train / 70.9% test accuracy;
``LogisticRegression(max_iter=1000)`` 100% train / 64.6% test; on 4,000 train / 2,000 test records,
``LogisticRegression(max_iter=200)`` 100% / 52.1%. Seed 1: 100% / 68.1%, 100% / 61.5%, 100% / 51.8%.
Class sizes at the default 20,000 records run from about 95 to 340.

Prototypes depend only on ``seed``; labels and records come from their own streams, so the first
``k`` records are the same whatever ``n_records`` is.
"""

from __future__ import annotations

import os

import numpy as np

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._registry import DATASETS, BuiltinDataset
from memberscope.exceptions import InvalidInputError

__all__ = ["DEFAULT_RECORDS", "N_CLASSES", "N_FEATURES", "PurchaseSynthetic", "generate_purchase"]

N_FEATURES, N_CLASSES, N_ARCHETYPES = 600, 100, 24
DEFAULT_RECORDS = 20_000
_STREAM = 0x9C  # separates this generator's streams from other uses of the same seed
_CHUNK = 4096  # records drawn at a time, to bound memory
_DESCRIPTION = "Purchase-100-like synthetic shoppers: 600 binary items, 100 classes (seeded, generated)"


def generate_purchase(n_records: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate Purchase-100-like records (see the module docstring for the model).

    Parameters
    ----------
    n_records : int
        How many records.
    seed : int
        Non-negative seed; the same seed gives byte-identical output.

    Returns
    -------
    X : ndarray of shape (n_records, 600), float32, values 0 or 1
    y : ndarray of shape (n_records,), int64, labels 0..99
    """
    if isinstance(n_records, bool) or not isinstance(n_records, int | np.integer) or n_records < 1:
        raise InvalidInputError(f"n_records must be a positive integer; got {n_records!r}")
    proto_rng, label_rng, record_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, _STREAM]).spawn(3)
    )
    # 1-2. archetypes → overlapping, sparse class prototypes with a few signature items each
    archetypes = proto_rng.beta(0.25, 3.0, size=(N_ARCHETYPES, N_FEATURES))
    mix = proto_rng.dirichlet(np.full(N_ARCHETYPES, 0.3), size=N_CLASSES)
    signature = proto_rng.random((N_CLASSES, N_FEATURES)) < 0.01
    boost = proto_rng.uniform(0.1, 0.3, size=(N_CLASSES, N_FEATURES))
    prototypes = np.clip(mix @ archetypes + signature * boost, 0.0, 0.95).astype(np.float32)
    # 3. mildly unequal class sizes
    class_weights = proto_rng.dirichlet(np.full(N_CLASSES, 12.0))
    y = label_rng.choice(N_CLASSES, size=n_records, p=class_weights).astype(np.int64)
    # 4. Bernoulli draws, in chunks (row-major, so a prefix of records does not depend on n_records)
    X = np.empty((n_records, N_FEATURES), dtype=np.float32)
    for start in range(0, n_records, _CHUNK):
        rows = slice(start, min(start + _CHUNK, n_records))
        uniform = record_rng.random((rows.stop - rows.start, N_FEATURES), dtype=np.float32)
        X[rows] = uniform < prototypes[y[rows]]
    return X, y


@DATASETS.register("purchase-synthetic")
class PurchaseSynthetic(BuiltinDataset):
    """Generated records; ``n_records`` (default 20,000) says how many, ``seed`` which."""

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            "purchase-synthetic", _DESCRIPTION, DEFAULT_RECORDS, (N_FEATURES,), N_CLASSES, "memberscope generator", True
        )

    def load_all(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
        return self.load(seed=seed)

    def load(
        self, *, data_dir: str | os.PathLike | None = None, seed: int = 0, n_records: int | None = None
    ) -> Dataset:
        X, y = generate_purchase(DEFAULT_RECORDS if n_records is None else n_records, seed=seed)
        return Dataset(
            name="purchase-synthetic",
            X=X,
            y=y,
            n_classes=N_CLASSES,
            class_names=[f"class-{k}" for k in range(N_CLASSES)],
            description=_DESCRIPTION,
            source=f"memberscope purchase-synthetic generator, seed {seed}",
        )
