"""The hardened inference gateway: a model behind API keys, rate limits, an output policy,
probing detection and an audit log (``memberscope serve``; :func:`create_app` from Python).

Needs the ``serve`` extra: ``pip install 'memberscope[serve]'``. Models are saved with
:func:`memberscope.targets.save_target` and served from the file, or passed to :func:`create_app` as objects.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "load_model", "load_policy"]


def create_app(model: Any, policy: Any, **kwargs: Any):
    """The gateway's FastAPI app (see :func:`memberscope.gateway.app.create_app`)."""
    from memberscope.gateway.app import create_app as _create_app

    return _create_app(model, policy, **kwargs)


def load_model(path: Any, **kwargs: Any):
    """A servable model from a file (see :func:`memberscope.gateway.loading.load_model`)."""
    from memberscope.gateway.loading import load_model as _load_model

    return _load_model(path, **kwargs)


def load_policy(path: Any):
    """A gateway policy from YAML (see :mod:`memberscope.gateway.policy`)."""
    from memberscope.gateway.policy import load_policy as _load_policy

    return _load_policy(path)
