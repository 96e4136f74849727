"""Training-time defenses are plug-ins: a defense declared in one file (here, this one) is a recipe option, a
`memberscope defend` spec, validated from its declaration, and trained by the one loop."""

import subprocess
import sys
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pytest

from memberscope.defenses.evaluate import TRAINING_DEFENSES, parse_defenses
from memberscope.exceptions import InvalidInputError
from memberscope.recipes import TorchRecipe, create
from memberscope.training import DEFENSES, TrainingDefense, register, supports_vectorized
from memberscope.training.defenses import option_defaults, recipe_options
from memberscope.training.options import Interval, Option


class FeatureDropout(TrainingDefense):
    """Zero each input feature of a minibatch with probability ``feature_dropout`` (a toy defense)."""

    name = "feature-dropout"
    options = (Option("feature_dropout", 0.0, Interval(0, 1)),)
    option, preset = "feature_dropout", 0.2
    aliases: ClassVar[Mapping[str, str]] = {"p": "feature_dropout"}
    excludes: ClassVar[Mapping[str, str]] = {"augment": "both perturb the inputs"}

    def start(self, run):
        self.generator = run.streams.spawn()

    def transform_batch(self, run, inputs):
        import torch

        keep = torch.rand(inputs.shape, generator=self.generator) >= self.recipe.feature_dropout
        return inputs * keep


@pytest.fixture
def toy_defense():
    register(FeatureDropout)
    try:
        yield FeatureDropout
    finally:
        DEFENSES.unregister(FeatureDropout.name)


def _data():
    rng = np.random.default_rng(0)
    return rng.random((120, 1, 4, 4), dtype=np.float32), rng.integers(0, 3, 120)


def test_a_defense_in_one_file_is_an_option_a_spec_and_trains(toy_defense):
    X, y = _data()
    recipe = create("mlp", hidden=[16], epochs=3, batch_size=32, feature_dropout=0.3)
    assert recipe.config()["feature_dropout"] == 0.3 and "feature_dropout" not in TorchRecipe().config()
    assert not supports_vectorized(recipe)
    model = recipe.train(X, y, n_classes=3, seed=1)
    again = recipe.train(X, y, n_classes=3, seed=1)
    plain = create("mlp", hidden=[16], epochs=3, batch_size=32).train(X, y, n_classes=3, seed=1)
    np.testing.assert_array_equal(model.query(X), again.query(X))
    assert not np.allclose(model.query(X), plain.query(X))
    # memberscope defend: the bare name sets the preset, a value or an alias sets the option.
    specs = {s.name: s for s in parse_defenses("none,feature-dropout,feature-dropout:0.5,feature-dropout:p=0.1")}
    assert specs["feature-dropout"].params == {"feature_dropout": 0.2}
    assert specs["feature-dropout:0.5"].params == {"feature_dropout": 0.5}
    assert specs["feature-dropout:p=0.1"].params == {"feature_dropout": 0.1}
    assert TRAINING_DEFENSES["feature-dropout"] == ("feature_dropout", 0.2)


def test_defenses_hook_in_in_registry_order(toy_defense, monkeypatch):
    from memberscope.training import loop

    seen = {}
    original = loop._train

    def spy(recipe, defenses, *args, **kwargs):
        trained = original(recipe, defenses, *args, **kwargs)
        seen["defenses"] = [type(d).__name__ for d in defenses]
        return trained

    monkeypatch.setattr(loop, "_train", spy)
    X, y = _data()
    create("mlp", hidden=[8], epochs=2, batch_size=40, feature_dropout=0.3, l1=1e-4).train(X, y, n_classes=3, seed=0)
    assert seen["defenses"] == ["L1", "FeatureDropout"]  # registry order: built-ins by file name, then later ones


def test_a_plug_in_s_declaration_produces_the_error_messages(toy_defense):
    with pytest.raises(InvalidInputError, match=r"feature_dropout must be in \[0, 1\); got 1\.5"):
        create("mlp", feature_dropout=1.5)
    with pytest.raises(InvalidInputError, match=r"augment cannot be combined with feature-dropout \(both perturb"):
        create("mlp", feature_dropout=0.1, augment=True)
    with pytest.raises(ValueError, match="already exist"):
        register(type("Again", (FeatureDropout,), {"name": "again"}))


def test_without_the_plug_in_its_option_is_unknown():
    with pytest.raises(InvalidInputError, match=r"unknown option.*'feature_dropout'"):
        create("mlp", feature_dropout=0.3)
    with pytest.raises(InvalidInputError, match="unknown defense 'feature-dropout'"):
        parse_defenses("feature-dropout")


def test_built_in_defenses_keep_their_specs_and_declarations():
    assert dict(TRAINING_DEFENSES) == {
        "none": (None, None),
        "augment": ("augment", True),
        "coarsen": ("coarsen", 0.25),
        "dp-sgd": ("dp_epsilon", 8.0),
        "dropout": ("dropout", 0.5),
        "early-stopping": ("early_stopping", 3),
        "ensemble": ("ensemble", 4),
        "l1": ("l1", 1e-5),
        "l2": ("weight_decay", 5e-4),
        "label-smoothing": ("label_smoothing", 0.1),
        "minimize": ("fraction", 0.1),
    }
    declared = {o.name for o in recipe_options()}
    assert len(declared) == len(recipe_options())  # each option declared once
    for name in DEFENSES.names():
        cls = DEFENSES.get(name)
        assert set(cls.excludes) <= declared and cls.option in declared, name
        assert cls.preset != option_defaults()[cls.option], name  # the preset switches it on
    assert [name for name in DEFENSES.names() if DEFENSES.get(name).vectorized] == ["l2"]


def test_recipes_and_privacy_import_no_defenses_and_no_torch():
    code = (
        "import sys, memberscope.recipes, memberscope.privacy, memberscope.training; "
        "print(sorted(m for m in ('memberscope.defenses', 'torch', 'opacus') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
