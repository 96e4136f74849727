"""Load a Hugging Face language model and its tokenizer from a local directory; nothing is downloaded.

The folder's ``config.json`` says what it holds (``architectures``, else ``model_type``), and that decides
how it is loaded and scored: a causal LM (``…ForCausalLM``, ``…LMHeadModel``) through
``AutoModelForCausalLM`` and next-token log-probabilities, a masked LM (``…ForMaskedLM``) through
``AutoModelForMaskedLM`` and pseudo-log-likelihoods (:mod:`~memberscope.llm.scoring`). Anything else (a text
classifier, a tagger, a bare encoder, ...) is refused with its head named, because loading it as a language
model would give it a randomly initialised output layer and the audit would measure noise ("no leakage").
For the same reason, any weight the loader had to initialise afresh is an error, never a hidden log line.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = [
    "LM_KINDS",
    "LanguageModel",
    "describe_architecture",
    "load_language_model",
    "load_text_classifier",
    "require_transformers",
]

EXTRA_HINT = "pip install 'memberscope[llm]' (transformers and tokenizers)"

#: How each kind of language model is loaded: kind → the ``transformers`` auto class.
LM_KINDS: dict[str, str] = {"causal": "AutoModelForCausalLM", "masked": "AutoModelForMaskedLM"}

#: Heads that are not language models, by the auto-mapping that lists them: what they are, in words.
_OTHER_HEADS: tuple[tuple[str, str], ...] = (
    ("MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES", "a text classifier"),
    ("MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES", "a token classifier (tagger)"),
    ("MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES", "an extractive question-answering model"),
    ("MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES", "a multiple-choice model"),
    ("MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING_NAMES", "a next-sentence classifier"),
    ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "an encoder-decoder (sequence-to-sequence) model"),
    ("MODEL_MAPPING_NAMES", "a bare encoder or decoder with no language-modelling head"),
)
_HINTS = {
    "a text classifier": "audit it as a classifier on texts and their labels with `memberscope text-audit` "
    "(memberscope.llm.text_audit.audit_text_classifier), not with token-level LM attacks",
    "an encoder-decoder (sequence-to-sequence) model": "memberscope scores causal and masked LMs only",
}
_SUFFIX_KINDS = (("ForCausalLM", "causal"), ("LMHeadModel", "causal"), ("ForMaskedLM", "masked"))
#: Tokenizer files ``AutoTokenizer`` reads; a folder with none of them yields an empty tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.model",
)
_FRESH_WEIGHTS = re.compile(r"newly initiali[sz]ed|not initiali[sz]ed|\bMISSING\b|\bMISMATCH|is_decoder|corrupted")


def require_transformers():
    """The ``transformers`` module, with hub access switched off; MissingDependencyError naming the extra if absent."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(f"language-model audits need the 'llm' extra: {EXTRA_HINT}") from None
    # Quiet by default; load_language_model captures what loading logs and turns weight problems into errors.
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


@dataclass
class LanguageModel:
    """A language model in eval mode and its tokenizer, with what it is and where they came from.

    Attributes
    ----------
    kind : ``"causal"`` (next-token log-probabilities) or ``"masked"`` (pseudo-log-likelihood); a key of
        :data:`LM_KINDS`, and of the scorers in :mod:`~memberscope.llm.scoring`.
    architecture : the class that was loaded, e.g. ``"GPT2LMHeadModel"``.
    tokenizer_path : the folder the tokenizer came from (the model's, unless another was given).
    load_warnings : what transformers logged while loading that is not a weight problem (those raise).
    """

    model: Any
    tokenizer: Any
    path: str
    kind: str = "causal"
    architecture: str = ""
    tokenizer_path: str = ""
    load_warnings: list[str] = field(default_factory=list)

    @property
    def start_token_id(self) -> int | None:
        """Token prepended to every text so its first token is scored too (BOS, else EOS); None if neither exists."""
        for attr in ("bos_token_id", "eos_token_id"):
            value = getattr(self.tokenizer, attr, None)
            if value is not None:
                return int(value)
        return None

    @property
    def max_positions(self) -> int | None:
        """Longest input the model takes, in tokens: the config's positions, capped by the tokenizer's limit."""
        config = self.model.config
        limit = None
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                limit = value
                break
        tok_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < 1_000_000:  # unset limits are ~1e30
            limit = tok_limit if limit is None else min(limit, tok_limit)
        return limit


def _auto_mappings() -> dict[str, Any]:
    from transformers.models.auto import modeling_auto

    return {name: getattr(modeling_auto, name) for name in dir(modeling_auto) if name.endswith("_MAPPING_NAMES")}


def _listed(mapping, architecture: str) -> bool:
    for value in mapping.values():
        if architecture == value or (isinstance(value, tuple | list) and architecture in value):
            return True
    return False


def describe_architecture(config: dict[str, Any]) -> tuple[str | None, str, str]:
    """What a ``config.json`` holds: ``(kind, architecture, description)``.

    ``kind`` is a key of :data:`LM_KINDS`, or None when the folder is not a language model; ``description``
    then says what it is ("a text classifier", ...). Without ``architectures`` the ``model_type`` decides: a
    type with only one of the two LM heads gets that one; a type with both (BERT, RoBERTa) is causal only when
    ``is_decoder`` is set.
    """
    maps = _auto_mappings()
    causal = maps["MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"]
    masked = maps["MODEL_FOR_MASKED_LM_MAPPING_NAMES"]
    architectures = config.get("architectures") or []
    model_type = config.get("model_type")
    if not architectures:
        in_causal, in_masked = model_type in causal, model_type in masked
        if in_causal and (not in_masked or config.get("is_decoder")):
            return "causal", str(causal[model_type]), "a causal language model"
        if in_masked:
            return "masked", str(masked[model_type]), "a masked language model"
        return None, f"model_type {model_type!r}", "a model with no causal or masked language-modelling head"
    architecture = str(architectures[0])
    if _listed(causal, architecture):
        return "causal", architecture, "a causal language model"
    if _listed(masked, architecture):
        return "masked", architecture, "a masked language model"
    if architecture.endswith("ForPreTraining") and model_type in masked:  # BERT's MLM + NSP heads
        return "masked", architecture, "a masked language model (pre-training heads)"
    for mapping_name, words in _OTHER_HEADS:
        if _listed(maps.get(mapping_name, {}), architecture):
            return None, architecture, words
    for suffix, kind in _SUFFIX_KINDS:  # architectures transformers does not list (custom code)
        if architecture.endswith(suffix):
            return kind, architecture, f"a {kind} language model"
    return None, architecture, "neither a causal LM (…ForCausalLM, …LMHeadModel) nor a masked LM (…ForMaskedLM)"


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))


@contextmanager
def _captured_transformers_logs(transformers):
    """Collect what transformers logs at WARNING and above (and Python warnings), without printing it."""
    tlog = transformers.utils.logging
    root = tlog.get_logger()
    handler = _Capture()
    level, handlers, propagate = tlog.get_verbosity(), root.handlers[:], root.propagate
    root.handlers, root.propagate = [handler], False
    tlog.set_verbosity_warning()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield handler.messages
        handler.messages.extend(str(w.message) for w in caught)
    finally:
        tlog.set_verbosity(level)
        root.handlers, root.propagate = handlers, propagate


def _condense(message: str, limit: int = 400) -> str:
    """One line: table rules and runs of whitespace collapsed, cut at ``limit`` characters."""
    text = " ".join(re.sub(r"[-+|]{3,}", " ", message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_config(directory: Path, what: str) -> dict[str, Any]:
    import json

    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read {what} directory {str(directory)!r}'s config.json: {exc}") from None
    if not isinstance(config, dict):
        raise InvalidInputError(f"{what} directory {str(directory)!r}'s config.json is not a JSON object")
    return config


def _load_tokenizer(transformers, directory: Path, what: str, *, given: bool):
    """``AutoTokenizer`` from ``directory``, refusing a folder without tokenizer files or with an empty vocabulary."""
    source = "--tokenizer" if given else f"{what} directory"
    if not directory.is_dir():
        raise InvalidInputError(f"{source} {str(directory)!r} is not a directory; expected a tokenizer folder")
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        hint = "" if given else "; save the tokenizer there (tokenizer.save_pretrained) or pass --tokenizer PATH"
        raise InvalidInputError(
            f"{source} {str(directory)!r} has no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)}){hint}"
        )
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"cannot load a tokenizer from {source} {str(directory)!r}: {exc}") from None
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise InvalidInputError(
            f"the tokenizer in {source} {str(directory)!r} has no vocabulary beyond its {len(tokenizer)} special "
            "tokens; expected the tokenizer the model was trained with"
        )
    return tokenizer


def load_language_model(
    path: str | os.PathLike, *, what: str = "model", tokenizer: str | os.PathLike | None = None
) -> LanguageModel:
    """Load the language model in ``path`` with the auto class its config names, and its tokenizer.

    Parameters
    ----------
    path : directory holding ``config.json`` and the weights (what ``save_pretrained`` writes).
    what : how the directory is named in error messages (``"model"``, ``"reference model"``).
    tokenizer : directory of the tokenizer, when it is not saved beside the model.

    Raises
    ------
    InvalidInputError
        No such directory, no ``config.json``; a folder holding something other than a causal or masked LM
        (the head is named); weights the loader would initialise afresh (a head that is not in the
        checkpoint); no tokenizer files; a tokenizer larger than the model's vocabulary.
    MissingDependencyError
        transformers is not installed.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise InvalidInputError(
            f"{what} directory {str(directory)!r} does not exist; expected a save_pretrained folder"
        )
    if not (directory / "config.json").is_file():
        raise InvalidInputError(
            f"{what} directory {str(directory)!r} has no config.json; expected a Hugging Face save_pretrained folder"
        )
    transformers = require_transformers()
    import torch

    kind, architecture, description = describe_architecture(_read_config(directory, what))
    if kind is None:
        hint = _HINTS.get(description, "memberscope's language-model audits need a causal or masked LM")
        raise InvalidInputError(
            f"{what} directory {str(directory)!r} holds a {architecture} ({description}), not a language model; {hint}"
        )
    tok_dir = Path(tokenizer) if tokenizer is not None else directory
    tok = _load_tokenizer(transformers, tok_dir, what, given=tokenizer is not None)
    auto = getattr(transformers, LM_KINDS[kind])
    with _captured_transformers_logs(transformers) as logged:
        try:
            model, info = auto.from_pretrained(str(directory), local_files_only=True, output_loading_info=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise InvalidInputError(
                f"cannot load {what} directory {str(directory)!r} ({architecture}) as a {kind} LM: {exc}"
            ) from None
    fresh = sorted(info.get("missing_keys") or []) + [str(k) for k in info.get("mismatched_keys") or []]
    if fresh:
        shown = ", ".join(fresh[:6]) + (f" and {len(fresh) - 6} more" if len(fresh) > 6 else "")
        raise InvalidInputError(
            f"loading {what} directory {str(directory)!r} ({architecture}) as a {kind} LM would initialise "
            f"{len(fresh)} weights at random ({shown}): the checkpoint lacks that head, so every score would be "
            "noise; expected a folder saved from the language model itself"
        )
    weight_logs = [m for m in logged if _FRESH_WEIGHTS.search(m)]
    if weight_logs:
        raise InvalidInputError(
            f"loading {what} directory {str(directory)!r} ({architecture}) as a {kind} LM: transformers reports "
            f"{_condense(weight_logs[0])}"
        )
    n_model = getattr(model.config, "vocab_size", None) or model.get_input_embeddings().num_embeddings
    if len(tok) > n_model:
        raise InvalidInputError(
            f"the tokenizer of {what} directory {str(directory)!r} has {len(tok)} tokens but the model's "
            f"vocabulary has {n_model}; expected the tokenizer the model was trained with"
        )
    model.eval()
    model.to(torch.float32)
    return LanguageModel(
        model=model,
        tokenizer=tok,
        path=str(directory),
        kind=kind,
        architecture=type(model).__name__,
        tokenizer_path=str(tok_dir),
        load_warnings=[_condense(m) for m in logged],
    )


def _check_folder(directory: Path, what: str) -> None:
    if not directory.is_dir():
        raise InvalidInputError(
            f"{what} directory {str(directory)!r} does not exist; expected a save_pretrained folder"
        )
    if not (directory / "config.json").is_file():
        raise InvalidInputError(
            f"{what} directory {str(directory)!r} has no config.json; expected a Hugging Face save_pretrained folder"
        )


def load_text_classifier(
    path: str | os.PathLike,
    *,
    what: str = "model",
    tokenizer: str | os.PathLike | None = None,
    max_length: int = 128,
    batch_size: int = 32,
):
    """The text classifier (``…ForSequenceClassification``) in ``path`` as a
    :class:`~memberscope.targets.language.TextClassifierTarget`.

    Parameters
    ----------
    path : directory holding ``config.json`` and the weights (what ``save_pretrained`` writes).
    what : how the directory is named in error messages.
    tokenizer : directory of the tokenizer, when it is not saved beside the model.
    max_length : tokens per text (longer texts are cut; the model's limit applies when lower).
    batch_size : texts per forward pass.

    Raises
    ------
    InvalidInputError
        No such directory or no ``config.json``; a folder holding something other than a sequence classifier
        (a language model is pointed to ``llm-audit``); weights the loader would initialise afresh (a
        classification head that is not in the checkpoint: its answers would be noise); no tokenizer files.
    MissingDependencyError
        transformers is not installed.
    """
    from memberscope.targets.language import TextClassifierTarget

    directory = Path(path)
    _check_folder(directory, what)
    transformers = require_transformers()
    kind, architecture, description = describe_architecture(_read_config(directory, what))
    if description != "a text classifier":
        hint = (
            "audit it with `memberscope llm-audit` (token-level attacks)"
            if kind is not None
            else "a text audit needs a …ForSequenceClassification folder (fine-tuned with its classification head)"
        )
        raise InvalidInputError(
            f"{what} directory {str(directory)!r} holds a {architecture} ({description}), not a text classifier; {hint}"
        )
    tok = _load_tokenizer(transformers, Path(tokenizer) if tokenizer is not None else directory, what,
                          given=tokenizer is not None)  # fmt: skip
    with _captured_transformers_logs(transformers) as logged:
        try:
            model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(directory), local_files_only=True, output_loading_info=True
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise InvalidInputError(
                f"cannot load {what} directory {str(directory)!r} ({architecture}) as a text classifier: {exc}"
            ) from None
    fresh = sorted(info.get("missing_keys") or []) + [str(k) for k in info.get("mismatched_keys") or []]
    weight_logs = [m for m in logged if _FRESH_WEIGHTS.search(m)]
    if fresh or weight_logs:
        shown = ", ".join(fresh[:6]) + (f" and {len(fresh) - 6} more" if len(fresh) > 6 else "")
        detail = f"would initialise {len(fresh)} weights at random ({shown})" if fresh else _condense(weight_logs[0])
        raise InvalidInputError(
            f"loading {what} directory {str(directory)!r} ({architecture}) as a text classifier: {detail}; the "
            "checkpoint lacks its classification head, so every answer would be noise. Expected the fine-tuned "
            "classifier itself (to fine-tune reference models from a pre-trained model, pass it as the base model)"
        )
    n_model = getattr(model.config, "vocab_size", None) or model.get_input_embeddings().num_embeddings
    if len(tok) > n_model:
        raise InvalidInputError(
            f"the tokenizer of {what} directory {str(directory)!r} has {len(tok)} tokens but the model's "
            f"vocabulary has {n_model}; expected the tokenizer the model was trained with"
        )
    target = TextClassifierTarget(model, tok, max_length=max_length, batch_size=batch_size, path=str(directory))
    target.notes += [f"while loading {directory}: {_condense(m)}" for m in logged]
    return target
