"""A self-contained text-classifier setting: the demo BERT, fine-tuned as a classifier on labelled fortunes.

1. The BERT demo setting (:func:`~memberscope.llm.demo_setting.build_demo_setting` with ``architecture="bert"``)
   gives a small BERT pre-trained (masked LM) on public fortunes, and an IID pool of other fortunes split into
   members and non-members. Its *base* folder is the pre-trained model.
2. Every pool text gets a synthetic label: ``long`` when it has more words than the pool's median, else
   ``short``; then a seeded fraction ``label_noise`` of labels is flipped, so that part of what the classifier
   learns can only be memorised (a realistic gap between training and test accuracy).
3. The base is fine-tuned as a sequence classifier on the members (with
   :class:`~memberscope.llm.finetune.TextClassifierRecipe`, the recipe the audit's reference models use) and
   saved with ``save_pretrained``: the *target* folder, a ``BertForSequenceClassification`` any user could have.

The folders are cached under the memberscope cache directory, keyed by the config and the base model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from memberscope.llm.demo_setting import DemoConfig, build_demo_setting
from memberscope.llm.texts import LabelledTexts

__all__ = ["CLASS_NAMES", "ClassifierDemoConfig", "ClassifierSetting", "build_classifier_setting", "length_labels"]

CLASS_NAMES = ("short", "long")


@dataclass(frozen=True)
class ClassifierDemoConfig:
    """Everything that determines the demo classifier (part of its cache key); ``base`` is the BERT demo's config."""

    base: DemoConfig = field(default_factory=lambda: DemoConfig(architecture="bert"))
    seed: int = 0
    label_noise: float = 0.25
    epochs: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 16
    max_length: int = 64

    def finetune(self) -> dict:
        """The fine-tuning settings, as :class:`~memberscope.llm.finetune.TextClassifierRecipe` takes them."""
        return {"epochs": self.epochs, "learning_rate": self.learning_rate, "batch_size": self.batch_size}


@dataclass
class ClassifierSetting:
    """The pre-trained base, the fine-tuned classifier, and the labelled members and non-members."""

    base_dir: Path
    target_dir: Path
    members: LabelledTexts
    nonmembers: LabelledTexts
    config: ClassifierDemoConfig
    cached: bool


def length_labels(texts: list[str], *, noise: float, seed: int) -> list[str]:
    """``long`` for texts with more words than the median of ``texts``, else ``short``; a seeded ``noise``
    fraction of them flipped (exactly ``round(noise * n)`` labels, drawn with ``numpy.random.default_rng(seed)``)."""
    words = np.array([len(t.split()) for t in texts])
    long = words > np.median(words)
    rng = np.random.default_rng(seed)
    flip = rng.choice(len(texts), size=int(round(noise * len(texts))), replace=False)
    long[flip] = ~long[flip]
    return [CLASS_NAMES[int(v)] for v in long]


def build_classifier_setting(
    config: ClassifierDemoConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    fortunes_dir: str | os.PathLike | None = None,
    threads: int | None = 1,
) -> ClassifierSetting:
    """Build (or reuse from the cache) the demo text classifier; seeded: same config, same model."""
    from memberscope.cache import default_cache_dir
    from memberscope.llm.finetune import TextClassifierRecipe, folder_fingerprint

    config = config or ClassifierDemoConfig()
    lm = build_demo_setting(config.base, cache_dir=cache_dir, fortunes_dir=fortunes_dir, threads=threads)
    pool = lm.members + lm.nonmembers
    labels = length_labels(pool, noise=config.label_noise, seed=config.seed)
    n = len(lm.members)
    members = LabelledTexts(lm.members, labels[:n], [f"member:{i}" for i in range(n)])
    nonmembers = LabelledTexts(lm.nonmembers, labels[n:], [f"nonmember:{i}" for i in range(len(lm.nonmembers))])
    key_payload = {"config": asdict(config), "base": folder_fingerprint(lm.base_dir), "format": 1}
    key = hashlib.sha256(json.dumps(key_payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
    root = Path(cache_dir or default_cache_dir()) / "text-classifier-demo" / key
    target_dir = root / "target"
    if (root / "setting.json").is_file():
        return ClassifierSetting(lm.base_dir, target_dir, members, nonmembers, config, True)

    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        recipe = TextClassifierRecipe(
            lm.base_dir, class_names=list(CLASS_NAMES), max_length=config.max_length, **config.finetune()
        )
        model = recipe.train(members.texts, _codes(members.labels), n_classes=len(CLASS_NAMES), seed=config.seed)
    finally:
        torch.set_num_threads(previous)
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / "target")
    (tmp / "setting.json").write_text(json.dumps({"config": asdict(config), "base": str(lm.base_dir)}, indent=2))
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return ClassifierSetting(lm.base_dir, target_dir, members, nonmembers, config, False)


def _codes(labels: list[str]) -> np.ndarray:
    return np.array([CLASS_NAMES.index(v) for v in labels], dtype=np.int64)
