"""A tiny random GPT-2 and byte-level BPE tokenizer, saved with save_pretrained, for the llm tests."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "my PIN is 4 8 1 5 2 9",
    "Never put off till tomorrow what you can do today.",
    "All that glitters is not gold; all who wander are not lost.",
    "To be or not to be, that is the question.",
]


def make_tiny_lm(path: Path, *, seed: int = 0, n_layer: int = 2, n_embd: int = 32) -> Path:
    """Save a random-init GPT-2 (2 layers, d=32, context 64) and a 300-token BPE tokenizer under ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(fast), n_positions=64, n_embd=n_embd, n_layer=n_layer, n_head=2, bos_token_id=0, eos_token_id=0
    )
    model = GPT2LMHeadModel(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    fast.save_pretrained(str(path))
    return path


def one_torch_thread():
    """Generator for an autouse fixture: tiny models run fastest on one thread (and do not fight other jobs)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
