"""The self-contained LLM setting: a small GPT-2 (or BERT) pre-trained on Debian's fortunes, fine-tuned on private
records.

1. The fortunes under ``/usr/share/games/fortunes`` (Debian package ``fortunes``) are read, cleaned
   and shuffled with the seed.
2. A pool of held-out fortunes is split at random (IID) into members and non-members; the rest is
   the public pre-training corpus, on which a byte-level BPE tokenizer is trained.
3. A random-init GPT-2 (``architecture="gpt2"``: causal LM objective) or BERT (``"bert"``: masked-LM
   objective, 15% of tokens masked, 80/10/10 as in Devlin et al. 2019) is pre-trained on the public corpus
   (the *base* model), then fine-tuned for several epochs on the members plus Secret-Sharer canaries
   repeated 1, 4 and 16 times (the *target*). Architectures are entries of :data:`DEMO_ARCHITECTURES`.
4. Both are written with ``save_pretrained`` and read back through
   :func:`~memberscope.llm.loading.load_language_model`, as any user's model is.

The result is cached under the memberscope cache directory, keyed by the config and the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import DataUnavailableError
from memberscope.llm.canaries import Canary, make_canaries
from memberscope.registry import Registry

__all__ = [
    "DEFAULT_FORTUNES_DIR",
    "DEMO_ARCHITECTURES",
    "DemoArchitecture",
    "DemoConfig",
    "DemoSetting",
    "build_demo_setting",
    "load_fortunes",
]

DEFAULT_FORTUNES_DIR = "/usr/share/games/fortunes"
END = "<|endoftext|>"


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines the demo models (part of the cache key)."""

    seed: int = 0
    vocab_size: int = 1024
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    context: int = 64
    max_chars: int = 200
    n_pretrain: int = 6000
    pretrain_epochs: int = 2
    pretrain_lr: float = 2e-3
    n_members: int = 300
    n_nonmembers: int = 300
    finetune_epochs: int = 20
    finetune_lr: float = 1e-3
    batch_size: int = 32
    canary_repetitions: tuple[int, ...] = (1, 4, 16)
    canaries_per_repetition: int = 10
    canary_digits: int = 6
    architecture: str = "gpt2"
    mask_fraction: float = 0.15

    def key(self, corpus_fingerprint: str) -> str:
        fields = asdict(self)
        if self.architecture == "gpt2":  # GPT-2 caches built before BERT was added keep their key
            del fields["architecture"], fields["mask_fraction"]
        payload = json.dumps({"config": fields, "corpus": corpus_fingerprint, "format": 1}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]


@dataclass
class DemoSetting:
    """Where the two models live and what the target was fine-tuned on."""

    base_dir: Path
    target_dir: Path
    members: list[str]
    nonmembers: list[str]
    canaries: list[Canary]
    config: DemoConfig
    cached: bool
    info: dict[str, Any] = field(default_factory=dict)


def _clean(text: str) -> str:
    text = re.sub(r".\x08", "", text)  # overstriking (bold/underline via backspace)
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)
    return re.sub(r"\s+", " ", text).strip()


def load_fortunes(
    directory: str | os.PathLike | None = None, *, min_chars: int = 16, max_chars: int = 200
) -> list[str]:
    """Distinct fortunes of ``min_chars..max_chars`` characters, one line each, in a fixed order."""
    root = Path(directory or os.environ.get("MEMBERSCOPE_FORTUNES_DIR", DEFAULT_FORTUNES_DIR))
    files = sorted(p for p in root.glob("*") if p.is_file() and not p.suffix) if root.is_dir() else []
    if not files:
        raise DataUnavailableError(
            f"no fortune files in {str(root)!r}; install Debian's 'fortunes' package (scripts/setup.sh does) "
            "or set MEMBERSCOPE_FORTUNES_DIR"
        )
    seen: dict[str, None] = {}
    for path in files:
        for chunk in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = _clean(chunk.strip("%\n"))
            if min_chars <= len(text) <= max_chars and text not in seen:
                seen[text] = None
    return list(seen)


def _bpe_tokenizer(texts: list[str], vocab_size: int, special_tokens: list[str]):
    """A byte-level BPE (every string encodes, no unknown token) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


@dataclass(frozen=True)
class DemoArchitecture:
    """How one architecture's demo model is made and trained.

    ``tokenizer(texts, vocab_size)`` and ``model(transformers, config, tokenizer)`` build them;
    ``encode(tokenizer, text, context)`` gives a training sequence; ``loss(model, ids, mask, pad, config,
    tokenizer, gen)`` the training loss of a right-padded batch (``gen`` draws any masking).
    """

    tokenizer: Callable
    model: Callable
    encode: Callable
    loss: Callable


DEMO_ARCHITECTURES: Registry[DemoArchitecture] = Registry("demo architecture")


def _gpt2_tokenizer(texts: list[str], vocab_size: int):
    from transformers import PreTrainedTokenizerFast

    tok = _bpe_tokenizer(texts, vocab_size, [END])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=END, eos_token=END, pad_token=END)


def _gpt2_model(transformers, config: DemoConfig, tokenizer):
    end = tokenizer.convert_tokens_to_ids(END)
    model_config = transformers.GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.context,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        bos_token_id=end,
        eos_token_id=end,
        pad_token_id=end,
    )
    return transformers.GPT2LMHeadModel(model_config)


def _gpt2_encode(tokenizer, text: str, context: int) -> list[int]:
    end = tokenizer.convert_tokens_to_ids(END)
    return [end, *tokenizer(text, add_special_tokens=False)["input_ids"], end][:context]


def _causal_loss(model, ids, mask, config, tokenizer, gen):
    labels = ids.masked_fill(mask == 0, -100)
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


DEMO_ARCHITECTURES.register("gpt2")(DemoArchitecture(_gpt2_tokenizer, _gpt2_model, _gpt2_encode, _causal_loss))

BERT_SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


def _bert_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = _bpe_tokenizer(texts, vocab_size, list(BERT_SPECIALS))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    pad, cls_token, sep_token, mask = BERT_SPECIALS
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=pad, cls_token=cls_token, sep_token=sep_token, mask_token=mask
    )


def _bert_model(transformers, config: DemoConfig, tokenizer):
    model_config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.n_embd,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        intermediate_size=4 * config.n_embd,
        max_position_embeddings=config.context,
        pad_token_id=tokenizer.pad_token_id,
    )
    return transformers.BertForMaskedLM(model_config)


def _bert_encode(tokenizer, text: str, context: int) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: context - 2]
    return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]


def _masked_loss(model, ids, mask, config, tokenizer, gen):
    """MLM loss (Devlin et al. 2019): ``mask_fraction`` of the text tokens (at least one per text) are predicted;
    80% of them are replaced by [MASK], 10% by a random token, 10% left as they are."""
    import torch

    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    text_token = (mask == 1) & ~torch.isin(ids, special)
    draw = torch.rand(ids.shape, generator=gen)
    chosen = text_token & (draw < config.mask_fraction)
    # A text with no chosen token gets its least-drawn text token, so every text contributes.
    fallback = torch.where(text_token, draw, torch.full_like(draw, 2.0)).argmin(dim=1)
    none = ~chosen.any(dim=1) & text_token.any(dim=1)
    chosen[none, fallback[none]] = True
    labels = ids.masked_fill(~chosen, -100)
    action = torch.rand(ids.shape, generator=gen)
    inputs = ids.clone()
    inputs[chosen & (action < 0.8)] = tokenizer.mask_token_id
    n_special = len(tokenizer.all_special_ids)
    random_ids = torch.randint(n_special, len(tokenizer), ids.shape, generator=gen)
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    return model(input_ids=inputs, attention_mask=mask, labels=labels).loss


DEMO_ARCHITECTURES.register("bert")(DemoArchitecture(_bert_tokenizer, _bert_model, _bert_encode, _masked_loss))


def _train(
    model,
    tokenizer,
    texts: list[str],
    *,
    arch: DemoArchitecture,
    config: DemoConfig,
    epochs: int,
    lr: float,
    seed: int,
    bars: Any = None,
    description: str = "training",
):
    """Train on each text's sequence (cut at ``config.context``) with the architecture's loss; AdamW, cosine decay.

    ``bars`` (a ``rich.progress.Progress``) gets a task of ``description`` advanced once per optimizer step."""
    import torch

    batch_size = config.batch_size
    pad = tokenizer.pad_token_id
    seqs = [arch.encode(tokenizer, t, config.context) for t in texts]
    gen = torch.Generator().manual_seed(seed)
    steps = max(1, epochs * ((len(seqs) + batch_size - 1) // batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, steps) / steps)))
    model.train()
    losses = []
    task = None if bars is None else bars.add_task(description, total=steps)
    for _ in range(epochs):
        order = torch.randperm(len(seqs), generator=gen).tolist()
        for b in range(0, len(order), batch_size):
            batch = [seqs[i] for i in order[b : b + batch_size]]
            width = max(len(s) for s in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, s in enumerate(batch):
                ids[row, : len(s)] = torch.tensor(s)
                mask[row, : len(s)] = 1
            loss = arch.loss(model, ids, mask, config, tokenizer, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if task is not None:
                bars.advance(task)
    model.eval()
    return losses


def _save(model, tokenizer, path: Path) -> None:
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))


def build_demo_setting(
    config: DemoConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    fortunes_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
    threads: int | None = 1,
    bars: Any = None,
) -> DemoSetting:
    """Build (or reuse from the cache) the base and fine-tuned demo models; seeded: same config, same models."""
    from memberscope.cache import default_cache_dir
    from memberscope.llm.loading import require_transformers

    config = config or DemoConfig()
    say = log or (lambda _msg: None)
    corpus = load_fortunes(fortunes_dir, max_chars=config.max_chars)
    fingerprint = hashlib.sha256("\n".join(corpus).encode()).hexdigest()
    need = config.n_members + config.n_nonmembers + config.n_pretrain
    if len(corpus) < need:
        raise DataUnavailableError(f"the fortunes corpus has {len(corpus)} usable texts; the config needs {need}")
    root = Path(cache_dir or default_cache_dir()) / "llm-demo" / config.key(fingerprint)
    meta_path = root / "setting.json"

    # 1. Seeded split: an IID pool of members/non-members, and a disjoint public pre-training corpus.
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(corpus))
    n_pool = config.n_members + config.n_nonmembers
    pool = [corpus[i] for i in order[:n_pool]]
    pretrain = [corpus[i] for i in order[n_pool : n_pool + config.n_pretrain]]
    member_pos = np.zeros(n_pool, dtype=bool)
    member_pos[rng.choice(n_pool, size=config.n_members, replace=False)] = True
    members = [t for t, m in zip(pool, member_pos, strict=True) if m]
    nonmembers = [t for t, m in zip(pool, member_pos, strict=True) if not m]
    canaries = make_canaries(
        repetitions=config.canary_repetitions,
        per_repetition=config.canaries_per_repetition,
        n_digits=config.canary_digits,
        seed=config.seed + 1,
    )

    if meta_path.is_file():
        info = json.loads(meta_path.read_text())
        say(f"demo models from cache {root}")
        return DemoSetting(root / "base", root / "target", members, nonmembers, canaries, config, True, info)

    # 2. Tokenizer and base model on the public corpus only.
    transformers = require_transformers()
    import torch

    previous_threads = torch.get_num_threads()
    if threads is not None:  # one thread: ops this small gain little from two, and lose a lot on a busy machine
        torch.set_num_threads(threads)
    try:
        return _build(
            config, transformers, torch, pretrain, members, nonmembers, canaries, fingerprint, root, say, bars=bars
        )
    finally:
        torch.set_num_threads(previous_threads)


def _build(
    config, transformers, torch, pretrain, members, nonmembers, canaries, fingerprint, root, say, *, bars=None
) -> DemoSetting:
    arch = DEMO_ARCHITECTURES.get(config.architecture)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    tokenizer = arch.tokenizer(pretrain, config.vocab_size)
    model = arch.model(transformers, config, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"pre-training a {n_params:,}-parameter {config.architecture} on {len(pretrain)} fortunes")
    kw = dict(arch=arch, config=config, bars=bars)
    pre_losses = _train(
        model,
        tokenizer,
        pretrain,
        epochs=config.pretrain_epochs,
        lr=config.pretrain_lr,
        seed=config.seed,
        description="pre-training (steps)",
        **kw,
    )
    pretrain_seconds = time.perf_counter() - started
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _save(model, tokenizer, tmp / "base")

    # 3. Fine-tune on the members plus the canaries, repeated.
    finetune = members + [c.text for c in canaries for _ in range(c.repetitions)]
    say(f"fine-tuning on {len(members)} members and {len(finetune) - len(members)} canary copies")
    t0 = time.perf_counter()
    ft_losses = _train(
        model,
        tokenizer,
        finetune,
        epochs=config.finetune_epochs,
        lr=config.finetune_lr,
        seed=config.seed + 2,
        description="fine-tuning (steps)",
        **kw,
    )
    finetune_seconds = time.perf_counter() - t0
    _save(model, tokenizer, tmp / "target")
    info = {
        "config": asdict(config),
        "corpus_fingerprint": fingerprint,
        "n_pretrain_texts": len(pretrain),
        "n_parameters": int(n_params),
        "pretrain_seconds": round(pretrain_seconds, 2),
        "finetune_seconds": round(finetune_seconds, 2),
        "pretrain_final_loss": float(np.mean(pre_losses[-20:])) if pre_losses else None,
        "finetune_final_loss": float(np.mean(ft_losses[-5:])) if ft_losses else None,
        "canaries": [c.to_dict() for c in canaries],
    }
    (tmp / "setting.json").write_text(json.dumps(info, indent=2))
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return DemoSetting(root / "base", root / "target", members, nonmembers, canaries, config, False, info)
