"""Tiny random GPT-2 and BERT models with byte-level BPE tokenizers, saved with save_pretrained, for the llm
tests; and the small demo settings (causal and masked), built once per test session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "my PIN is 4 8 1 5 2 9",
    "Never put off till tomorrow what you can do today.",
    "All that glitters is not gold; all who wander are not lost.",
    "To be or not to be, that is the question.",
]


def _bpe(special_tokens: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    return tok


def bert_tokenizer():
    """A 300-token byte-level BPE that frames every text as ``[CLS] text [SEP]`` and has a ``[MASK]`` token."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = _bpe(["[PAD]", "[CLS]", "[SEP]", "[MASK]"])
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )


def make_tiny_bert(
    path: Path, *, head: str = "BertForMaskedLM", seed: int = 0, tokenizer: bool = True, **config: object
) -> Path:
    """Save a random-init 2-layer BERT (d=32, 64 positions) with the given head class, and its tokenizer;
    ``config`` adds to the ``BertConfig`` (e.g. ``id2label`` for a classifier)."""
    import torch
    import transformers

    fast = bert_tokenizer()
    torch.manual_seed(seed)
    bert_config = transformers.BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=fast.pad_token_id,
        **config,
    )
    model = getattr(transformers, head)(bert_config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    if tokenizer:
        fast.save_pretrained(str(path))
    return path


def make_tiny_lm(path: Path, *, seed: int = 0, n_layer: int = 2, n_embd: int = 32, n_positions: int = 64) -> Path:
    """Save a random-init GPT-2 (2 layers, d=32, context 64) and a 300-token BPE tokenizer under ``path``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = _bpe(["<|endoftext|>"])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
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


_SETTINGS: dict = {}


def small_config(architecture: str = "gpt2"):
    """The small demo config: 80 members, 80 non-members, a 1-layer model; BERT fine-tunes longer (its MLM
    objective sees 15% of the tokens per epoch)."""
    from memberscope.llm.demo_setting import DemoConfig

    config = DemoConfig(
        seed=3,
        vocab_size=400,
        n_layer=1,
        n_embd=64,
        n_head=2,
        context=48,
        n_pretrain=400,
        pretrain_epochs=1,
        n_members=80,
        n_nonmembers=80,
        finetune_epochs=20,
        finetune_lr=3e-3,
        canaries_per_repetition=2,
        canary_digits=3,
    )
    return (
        config if architecture == "gpt2" else dataclasses.replace(config, architecture=architecture, finetune_epochs=30)
    )


def small_setting(tmp_path_factory, architecture: str = "gpt2"):
    """The small demo setting, built once per test session (every module gets the same one)."""
    from memberscope.llm.demo_setting import build_demo_setting

    if architecture not in _SETTINGS:
        cache = tmp_path_factory.getbasetemp() / "llm-small-settings"
        _SETTINGS[architecture] = build_demo_setting(small_config(architecture), cache_dir=cache)
    return _SETTINGS[architecture]


def small_classifier_setting(tmp_path_factory):
    """The small BERT demo base fine-tuned as a text classifier on labelled fortunes, built once per test session."""
    from memberscope.llm.classifier_demo import ClassifierDemoConfig, build_classifier_setting

    if "classifier" not in _SETTINGS:
        cache = tmp_path_factory.getbasetemp() / "llm-small-settings"
        config = ClassifierDemoConfig(base=small_config("bert"), epochs=30, learning_rate=1e-3, max_length=48)
        _SETTINGS["classifier"] = build_classifier_setting(config, cache_dir=cache)
    return _SETTINGS["classifier"]
