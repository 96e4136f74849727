"""Membership audits of causal language models: token-level attacks, canaries and a validity guard.

Everything here needs the ``llm`` extra (``pip install 'memberscope[llm]'``: transformers and
tokenizers); modules import it lazily so ``import memberscope`` stays light.

- :mod:`~memberscope.llm.loading`: any Hugging Face causal LM and tokenizer from a local directory.
- :mod:`~memberscope.llm.scoring`: one forward pass per text → per-token log-probs and full-vocabulary stats.
- :mod:`~memberscope.llm.attacks`: the token-level attacks (LOSS, zlib, lowercase, Min-K%, Min-K%++, reference).
- :mod:`~memberscope.llm.canaries`: Secret-Sharer canaries and their exposure.
- :mod:`~memberscope.llm.validity`: a bag-of-words baseline that flags a member/non-member split it can tell apart.
- :mod:`~memberscope.llm.demo_setting`: a small GPT-2 pre-trained on fortunes, fine-tuned on private records.
- :mod:`~memberscope.llm.audit`: the pipeline wiring them into ``results.json``.
"""
