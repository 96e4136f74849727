import numpy as np
import pytest

from memberscope.exceptions import InvalidInputError
from memberscope.queries import QUERY_SETS, augmented_views, model_outputs, n_views


def test_views_flip_and_shift_images():
    X = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    views = augmented_views(X, "flip-shift")
    assert len(views) == 10
    np.testing.assert_array_equal(views[0], X)
    np.testing.assert_array_equal(views[1], X[..., ::-1])
    down = views[2]  # shift (dy=1, dx=0): row r of the view is row r-1 of the image, top row zero
    np.testing.assert_array_equal(down[..., 1:, :], X[..., :-1, :])
    assert (down[..., 0, :] == 0).all()
    assert len(augmented_views(X, "flip")) == 2 and len(augmented_views(X, "none")) == 1


def test_n_views_counts_the_views_sent():
    X = np.zeros((2, 1, 4, 4), dtype=np.float32)
    for queries in QUERY_SETS:
        assert n_views(queries) == len(augmented_views(X, queries)), queries
    with pytest.raises(InvalidInputError, match="unknown query set 'rotate'"):
        n_views("rotate")


def test_tables_cannot_be_augmented_and_unknown_sets_are_named():
    with pytest.raises(InvalidInputError, match="use queries='none' for tables"):
        augmented_views(np.zeros((3, 5)), "flip")
    with pytest.raises(InvalidInputError, match="unknown query set 'rotate'"):
        augmented_views(np.zeros((3, 1, 4, 4)), "rotate")


def test_model_outputs_stack_views():
    from memberscope.targets import CallableTarget

    def total(X):
        return np.stack([X.reshape(len(X), -1).sum(1), np.zeros(len(X))], axis=1)

    X = np.random.default_rng(0).random((4, 1, 5, 5)).astype(np.float32)
    out = model_outputs(CallableTarget(total, output_kind="logits"), X, "flip")
    assert out.shape == (4, 2, 2)
    np.testing.assert_allclose(out[:, 0], out[:, 1], rtol=1e-6)  # a flip keeps the pixel sum
