"""Membership audits of language models: token-level attacks, canaries, a validity guard and dataset inference.

Everything here needs the ``llm`` extra (``pip install 'memberscope[llm]'``: transformers and tokenizers);
modules import it lazily so ``import memberscope`` stays light.

- :mod:`~memberscope.llm.loading`: a Hugging Face causal or masked LM and its tokenizer from a local directory;
  the config decides which, other heads are refused by name.
- :mod:`~memberscope.llm.texts`: text records from .txt, .jsonl, .csv/.tsv or .parquet files, read by column.
- :mod:`~memberscope.llm.scoring`: per-token log-probs and full-vocabulary stats (causal: one pass per text;
  masked: pseudo-log-likelihood), on exactly the scored (possibly cut) text.
- :mod:`~memberscope.llm.attacks`: the token-level attacks (LOSS, zlib, lowercase, Min-K%, Min-K%++, reference).
- :mod:`~memberscope.llm.canaries`: Secret-Sharer canaries and their exposure.
- :mod:`~memberscope.llm.validity`: a bag-of-words baseline that flags a member/non-member split it can tell apart.
- :mod:`~memberscope.llm.dataset_inference`: was a *set* of texts in the training data? (Maini et al. 2024).
- :mod:`~memberscope.llm.demo_setting`: a small GPT-2 or BERT pre-trained on fortunes, fine-tuned on private records.
- :mod:`~memberscope.llm.audit`: the pipeline wiring them into ``results.json``.
"""
