"""Reference text classifiers: copies of a pre-trained Hugging Face model fine-tuned on each reference subset.

:class:`TextClassifierRecipe` is the :class:`~memberscope.recipes.Recipe` of a text audit: the engine asks it to
train one model per reference subset (LiRA, RMIA and the shadow attack need models like the target, half of
them trained with each record), exactly as it asks an MLP recipe on tabular data. Each reference model is the
*base* folder (the pre-trained model the user's classifier was fine-tuned from) loaded with a fresh
classification head and fine-tuned with AdamW and a linearly decaying learning rate, the usual Hugging Face
recipe. A reference model that fine-tunes differently from the target (other epochs, learning rate, base)
weakens the attacks that use it, so the settings should match how the target was trained.

Randomness: the fresh head, the dropout masks and the order of the training texts depend only on the seed the
engine derives for each model. Hugging Face modules draw their initial head weights and dropout masks from
torch's process-wide generator, so each model is built and trained inside ``torch.random.fork_rng`` seeded
with its seed (the process's own stream is left as it was); the order of the texts comes from a
``torch.Generator`` of the same seed. Models are therefore reproducible in sequential runs and on process
workers (joblib's default); the threading backend would let two models draw each other's dropout masks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes import Recipe

__all__ = ["HEAD_PREFIXES", "TextClassifierRecipe", "folder_fingerprint"]

#: Weight-name prefixes of classification heads (and BERT's pooler, which a masked-LM checkpoint lacks): the
#: weights a pre-trained base is expected not to have. Any other weight initialised afresh is reported.
HEAD_PREFIXES = ("classifier.", "score.", "bert.pooler.", "pooler.", "pre_classifier.", "classification_head.")
#: Files up to this size are hashed whole in the base folder's fingerprint; larger ones by name, size and mtime.
_HASHED_BYTES = 16 * 2**20


def folder_fingerprint(directory: str | os.PathLike) -> str:
    """SHA-256 of a model folder: every file's name and content (files over 16 MiB: name, size and mtime)."""
    root = Path(directory)
    h = hashlib.sha256(b"memberscope-model-folder-v1")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        h.update(str(path.relative_to(root)).encode())
        if stat.st_size <= _HASHED_BYTES:
            h.update(path.read_bytes())
        else:
            h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def _as_number(value: Any) -> Any:
    """A number written as text (YAML reads ``1e-3`` as a string) as a float; anything else unchanged."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class TextClassifierRecipe(Recipe):
    """Fine-tune a copy of a pre-trained model folder as a sequence classifier (see the module docstring).

    Parameters
    ----------
    base : str or path, optional
        The pre-trained model the target was fine-tuned from (any Hugging Face folder whose encoder
        ``AutoModelForSequenceClassification`` can load: a masked LM, a bare encoder, a causal LM). None when
        no reference model is trained; :meth:`train` then raises.
    tokenizer : str or path, optional
        Tokenizer folder, when the base folder has none.
    class_names : list of str, optional
        Names of the classes (the target's ``id2label``), written into every reference model's config.
    epochs : int
    learning_rate : float
        AdamW's peak learning rate, decayed linearly to 0 over the training steps.
    batch_size : int
        Texts per step.
    weight_decay : float
    max_length : int
        Tokens per text, special tokens included (longer texts are cut, for training and answers).
    """

    name = "hf-text-classifier"

    def __init__(
        self,
        base: str | os.PathLike | None = None,
        *,
        tokenizer: str | os.PathLike | None = None,
        class_names: list[str] | None = None,
        epochs: int = 3,
        learning_rate: float = 5e-5,
        batch_size: int = 16,
        weight_decay: float = 0.0,
        max_length: int = 128,
    ):
        learning_rate, weight_decay = _as_number(learning_rate), _as_number(weight_decay)
        problems = []
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            problems.append(f"epochs must be an integer >= 1; got {epochs!r}")
        if not isinstance(learning_rate, int | float) or not learning_rate > 0:
            problems.append(f"learning_rate must be a number > 0; got {learning_rate!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            problems.append(f"batch_size must be an integer >= 1; got {batch_size!r}")
        if not isinstance(weight_decay, int | float) or weight_decay < 0:
            problems.append(f"weight_decay must be a number >= 0; got {weight_decay!r}")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
            problems.append(f"max_length must be an integer >= 2; got {max_length!r}")
        if base is not None and not (Path(base) / "config.json").is_file():
            problems.append(f"base model {str(base)!r} is not a Hugging Face folder with a config.json")
        if problems:
            raise InvalidInputError("invalid text-classifier fine-tuning settings:\n  - " + "\n  - ".join(problems))
        self.base = None if base is None else str(Path(base).resolve())
        self.tokenizer = None if tokenizer is None else str(Path(tokenizer).resolve())
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.epochs, self.learning_rate, self.batch_size = int(epochs), float(learning_rate), int(batch_size)
        self.weight_decay, self.max_length = float(weight_decay), int(max_length)
        self._fingerprint: str | None = None

    def config(self) -> dict[str, Any]:
        if self.base is not None and self._fingerprint is None:
            self._fingerprint = folder_fingerprint(self.base)
        return {
            "base": self.base,
            "base_fingerprint": self._fingerprint,
            "tokenizer": self.tokenizer,
            "class_names": self.class_names,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "weight_decay": self.weight_decay,
            "max_length": self.max_length,
        }

    # -- building ----------------------------------------------------------------------------------------

    def require_base(self) -> str:
        """The base folder; InvalidInputError saying what to pass when there is none."""
        if self.base is None:
            raise InvalidInputError(
                "reference models of a text classifier are fine-tunes of the pre-trained model it came from; "
                "pass that folder as the base model (--base-model DIR), or audit with 0 reference models"
            )
        return self.base

    def _labels(self, n_classes: int) -> dict[str, Any]:
        names = self.class_names or [str(i) for i in range(n_classes)]
        if len(names) != n_classes:
            raise InvalidInputError(f"{len(names)} class names for {n_classes} classes: {names[:20]}")
        return {
            "num_labels": n_classes,
            "id2label": dict(enumerate(names)),
            "label2id": {name: i for i, name in enumerate(names)},
        }

    def _tokenizer(self):
        from memberscope.llm.loading import _load_tokenizer, require_transformers

        given = self.tokenizer is not None
        folder = Path(self.tokenizer if given else self.require_base())
        return _load_tokenizer(require_transformers(), folder, "base model", given=given)

    def _target(self, model, tokenizer):
        from memberscope.targets.language import TextClassifierTarget

        return TextClassifierTarget(model, tokenizer, max_length=self.max_length, batch_size=max(self.batch_size, 32))

    def _from_base(self, n_classes: int):
        """The base folder as a sequence classifier with a fresh head (drawn from torch's seeded global stream)."""
        from memberscope.llm.loading import _captured_transformers_logs, require_transformers

        transformers = require_transformers()
        base = self.require_base()
        with _captured_transformers_logs(transformers):
            try:
                model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                    base, local_files_only=True, output_loading_info=True, **self._labels(n_classes)
                )
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise InvalidInputError(f"cannot load base model {base!r} as a text classifier: {exc}") from None
        fresh = sorted(str(k) for k in info.get("missing_keys") or [])
        return model, [k for k in fresh if not k.startswith(HEAD_PREFIXES)]

    def inspect_base(self, n_classes: int) -> list[str]:
        """Weights outside the classification head that loading the base initialises at random (an empty list
        for a proper pre-trained base); loads the base once, leaving torch's global generator as it was."""
        import torch

        with torch.random.fork_rng(devices=[]):
            return self._from_base(n_classes)[1]

    # -- the Recipe interface ------------------------------------------------------------------------

    def train(self, X: Any, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None):
        """Fine-tune a fresh copy of the base on texts ``X`` (shape ``(n,)`` or ``(n, 1)``) with labels ``y``
        (codes, shape ``(n,)``); deterministic in ``seed``. Returns a
        :class:`~memberscope.targets.language.TextClassifierTarget`."""
        import torch

        from memberscope.targets.language import as_texts
        from memberscope.training.randomness import Streams

        texts = as_texts(X)
        labels = torch.as_tensor(np.asarray(y, dtype=np.int64))
        if len(texts) != len(labels):
            raise InvalidInputError(f"{len(texts)} texts but {len(labels)} labels")
        tokenizer = self._tokenizer()
        streams = Streams(seed)
        order_gen = streams.batches()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model, _ = self._from_base(n_classes)
            if model.config.pad_token_id is None:
                model.config.pad_token_id = tokenizer.pad_token_id
            model.to(torch.float32)
            steps = self.epochs * max(1, -(-len(texts) // self.batch_size))
            optimizer = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / steps))
            model.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(texts), generator=order_gen).tolist()
                for start in range(0, len(order), self.batch_size):
                    rows = order[start : start + self.batch_size]
                    enc = tokenizer(
                        [texts[i] for i in rows],
                        padding=True,
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    )
                    loss = model(**enc, labels=labels[rows]).loss
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                if progress is not None:
                    progress()
            model.eval()
        return self._target(model, tokenizer)

    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]):
        """The model this recipe saved (a state dict) at ``path``, rebuilt on the base folder's architecture."""
        import torch

        from memberscope.llm.loading import _captured_transformers_logs, require_transformers

        transformers = require_transformers()
        base = self.require_base()
        config = transformers.AutoConfig.from_pretrained(base, local_files_only=True, **self._labels(n_classes))
        with torch.random.fork_rng(devices=[]), _captured_transformers_logs(transformers):
            model = transformers.AutoModelForSequenceClassification.from_config(config)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        tokenizer = self._tokenizer()
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return self._target(model.eval(), tokenizer)

    def describe(self) -> str:
        """One line for results and messages."""
        return (
            f"fine-tunes of {self.base} ({self.epochs} epochs, AdamW lr {self.learning_rate:g} decayed linearly, "
            f"batch {self.batch_size}, weight decay {self.weight_decay:g}, {self.max_length} tokens)"
        )

    def __repr__(self) -> str:
        return f"TextClassifierRecipe({json.dumps(self.config())})"
