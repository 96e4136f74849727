"""One interface for every model memberscope queries: local, saved, remote or fake.

``Target.query(records) -> outputs`` (see :mod:`memberscope.targets._base`), with

- :class:`SklearnTarget` — a fitted scikit-learn classifier or Pipeline (DataFrames reach it intact);
- :class:`TorchTarget` — a ``torch.nn.Module`` (memberscope's own trained networks are one);
- :class:`CallableTarget` — a function ``records -> scores``;
- :class:`HttpTarget` — a REST endpoint (the ``redteam`` extra);
- :class:`FakeTarget` — an in-process fake for tests;
- :class:`Postprocessed` — any of them seen through an output policy (top-k, rounding, labels, noise);

:func:`wrap` builds the right one for any object, a URL or a saved file (:func:`load_target`), and
:mod:`~memberscope.targets.outputs` turns every kind of answer into logits or probabilities the same way.
"""

from memberscope.targets._base import OUTPUT_KINDS, Target
from memberscope.targets._wrap import Postprocessed, wrap
from memberscope.targets.fake import FakeTarget
from memberscope.targets.files import load_target, save_target
from memberscope.targets.http import HttpTarget
from memberscope.targets.local import CallableTarget, SklearnTarget, TorchTarget
from memberscope.targets.outputs import as_logits, as_probabilities, query_logits, softmax

__all__ = [
    "OUTPUT_KINDS",
    "CallableTarget",
    "FakeTarget",
    "HttpTarget",
    "Postprocessed",
    "SklearnTarget",
    "Target",
    "TorchTarget",
    "as_logits",
    "as_probabilities",
    "load_target",
    "query_logits",
    "save_target",
    "softmax",
    "wrap",
]
