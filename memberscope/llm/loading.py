"""Load a Hugging Face causal language model and its tokenizer from a local directory; nothing is downloaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = ["LanguageModel", "load_language_model", "require_transformers"]

EXTRA_HINT = "pip install 'memberscope[llm]' (transformers and tokenizers)"


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
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


@dataclass
class LanguageModel:
    """A causal LM in eval mode and its tokenizer, with where they came from."""

    model: Any
    tokenizer: Any
    path: str

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
        config = self.model.config
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return None


def load_language_model(path: str | os.PathLike, *, what: str = "model") -> LanguageModel:
    """``AutoModelForCausalLM`` and ``AutoTokenizer`` ``from_pretrained(path, local_files_only=True)``.

    Parameters
    ----------
    path : directory holding ``config.json``, the weights and the tokenizer files (what ``save_pretrained`` writes).
    what : how the directory is named in error messages (``"model"``, ``"reference model"``).
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

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInputError(f"cannot load a tokenizer from {what} directory {str(directory)!r}: {exc}") from None
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInputError(f"cannot load a causal LM from {what} directory {str(directory)!r}: {exc}") from None
    model.eval()
    model.to(torch.float32)
    return LanguageModel(model=model, tokenizer=tokenizer, path=str(directory))
