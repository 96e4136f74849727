"""Text classifiers behind the target interface: a Hugging Face sequence classifier answering logits for texts.

``TextClassifierTarget.query(texts) -> logits (n, n_classes)``: the same interface as every other target, so the
engine, the attacks, the reference models and the reports treat a fine-tuned BERT like any tabular classifier.
Records are texts: a list of str, an array of shape ``(n,)`` or ``(n, 1)`` of str (what the engine slices
out of a :class:`~memberscope.llm.text_audit.TextDataset`), or a one-column DataFrame.

Columns are the model's classes in the order of its config's ``id2label`` (:attr:`classes` holds those names).
Texts longer than ``max_length`` tokens are cut (the model's own position limit applies when lower), and the
number cut is kept in :attr:`n_truncated` so results can say how many answers saw a shortened text.
Loading a folder (:func:`memberscope.llm.loading.load_text_classifier`) checks that it holds a classification
head; this module only runs the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError, ModelOutputError
from memberscope.targets._base import Target

__all__ = ["TextClassifierTarget", "as_texts", "class_names_of"]


def as_texts(records: Any) -> list[str]:
    """The texts of ``records``: a list of str, an array ``(n,)`` or ``(n, 1)`` of str, or a one-column DataFrame.

    Raises InvalidInputError for records of more than one column or values that are not strings.
    """
    if hasattr(records, "iloc"):
        if records.ndim == 2 and records.shape[1] != 1:
            raise InvalidInputError(
                f"a text classifier takes one column of texts; got a table of {records.shape[1]} columns"
            )
        values = list(records.iloc[:, 0] if records.ndim == 2 else records)
    elif isinstance(records, list):
        values = records
    else:
        array = np.asarray(records, dtype=object)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidInputError(
                f"a text classifier takes texts of shape (n,) or (n, 1); got records of shape {array.shape}"
            )
        values = array.tolist()
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise InvalidInputError(
            f"a text classifier takes strings; record {bad[0]} is a {type(values[bad[0]]).__name__} "
            f"({len(bad)} records are not strings)"
        )
    return values


def class_names_of(config: Any) -> list[str]:
    """The class names of a Hugging Face config, in column order: ``id2label[0 .. num_labels - 1]``."""
    n = int(config.num_labels)
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    return [id2label.get(i, str(i)) for i in range(n)]


def _position_limit(model: Any, tokenizer: Any) -> int | None:
    config = model.config
    limit = None
    for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            limit = value
            break
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 1_000_000:  # unset limits are ~1e30
        limit = tok_limit if limit is None else min(limit, tok_limit)
    return limit


class TextClassifierTarget(Target):
    """A Hugging Face ``…ForSequenceClassification`` model and its tokenizer: texts in, logits out.

    Parameters
    ----------
    model : a ``transformers`` sequence-classification model (put in eval mode, float32).
    tokenizer : its tokenizer (pads with its pad token; a tokenizer without one pads with EOS).
    max_length : int
        Tokens per text, special tokens included; longer texts are cut. The model's position limit applies
        when lower (:attr:`max_length` holds the one used).
    batch_size : int
        Texts per forward pass.
    path : str, optional
        Where the model came from, for messages and results.
    query_budget : int, optional

    Attributes
    ----------
    classes : ndarray of shape (n_classes,) of str — the config's ``id2label`` names, column by column.
    n_truncated : int — texts cut at :attr:`max_length` over every query so far.
    on_answer : callable or None — called with the number of texts of each batch answered (progress).
    """

    output_kind = "logits"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 128,
        batch_size: int = 32,
        path: str | None = None,
        query_budget: int | None = None,
    ):
        super().__init__(query_budget=query_budget)
        if int(max_length) < 2:
            raise InvalidInputError(f"max_length must be at least 2 tokens; got {max_length}")
        if int(batch_size) < 1:
            raise InvalidInputError(f"batch_size must be >= 1; got {batch_size}")
        import torch

        self.model = model.eval().to(torch.float32)
        self.tokenizer = tokenizer
        if getattr(tokenizer, "pad_token_id", None) is None:
            if getattr(tokenizer, "eos_token", None) is None:
                raise InvalidInputError(
                    f"the tokenizer of {path or 'the text classifier'} has neither a pad nor an EOS token to pad "
                    "batches with"
                )
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id  # GPT-2-style classifiers find the last token by it
        limit = _position_limit(model, tokenizer)
        self.requested_max_length = int(max_length)
        self.max_length = int(max_length) if limit is None else min(int(max_length), limit)
        self.batch_size = int(batch_size)
        self.path = path
        self.class_names = class_names_of(model.config)
        self.classes = np.asarray(self.class_names, dtype=object)
        self.n_classes = len(self.class_names)
        self.n_truncated = 0
        self.on_answer: Callable[[int], None] | None = None

    @property
    def description(self) -> str:
        name = type(self.model).__name__
        return f"{name} in {self.path}" if self.path else name

    def _query(self, records: Any) -> np.ndarray:
        import torch

        texts = as_texts(records)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                full = self.tokenizer(batch, add_special_tokens=True)["input_ids"]
                self.n_truncated += sum(len(ids) > self.max_length for ids in full)
                enc = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                out.append(self.model(**enc).logits.double().numpy())
                self.queries_spent += len(batch)
                if self.on_answer is not None:
                    self.on_answer(len(batch))
        logits = np.concatenate(out)
        if not np.all(np.isfinite(logits)):
            raise ModelOutputError(f"{self.description} answered NaN or infinite logits")
        return logits

    def save(self, path: Path) -> None:
        """Write the weights (a ``torch.save``'d state dict) to the file ``path``; a recipe that knows the
        architecture loads it (:meth:`memberscope.llm.finetune.TextClassifierRecipe.load`)."""
        import torch

        with open(path, "wb") as fh:
            torch.save(self.model.state_dict(), fh)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the model and tokenizer as a Hugging Face folder (``save_pretrained``); returns the folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(str(directory))
        return directory
