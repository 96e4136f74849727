"""Where independent training jobs run: joblib, with the backend chosen the scikit-learn way.

``backend=None`` leaves the choice to an enclosing ``joblib.parallel_config`` (so a user can wrap
:func:`memberscope.run_audit` in ``with parallel_config(backend="ray"):``); a named backend
is applied with ``joblib.parallel_config``. ``"ray"`` registers ``ray.util.joblib`` and connects to
the cluster at ``ray_address`` (else ``$RAY_ADDRESS``, else a local one it starts and stops); an
already initialised Ray is used as is. ``"dask"`` uses the current ``distributed.Client``, or
starts a local one on 127.0.0.1 for the duration.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = ["BACKENDS", "backend_context", "parse_bytes"]

BACKENDS = ("loky", "threading", "multiprocessing", "ray", "dask")

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNITS.update({"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12})
_UNITS.update({"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40})
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})


def parse_bytes(value: str | int | float) -> int:
    """``"2GiB"`` → 2147483648, ``"500MB"`` → 500000000, ``1024`` → 1024 (a positive size in bytes)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise InvalidInputError(
                f"memory size {value!r} is not a number of bytes with an optional unit; expected e.g. "
                "'2GiB', '512MiB', '1.5GB' or 1000000"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise InvalidInputError(f"memory size {value!r} must be positive")
    return size


@contextlib.contextmanager
def _ray(ray_address: str | None) -> Iterator[None]:
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise MissingDependencyError(
            "backend 'ray' needs Ray; install the extra: pip install 'memberscope[ray]'"
        ) from None
    register_ray()
    started = False
    if not ray.is_initialized():
        address = ray_address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {} if address else {"include_dashboard": False, "_node_ip_address": "127.0.0.1"}
        ray.init(address=address, log_to_driver=False, **kwargs)
        started = True
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _dask(n_jobs: int | None) -> Iterator[None]:
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "backend 'dask' needs dask.distributed; install the extra: pip install 'memberscope[ray]'"
        ) from None
    try:
        distributed.get_client()
        client = None
    except ValueError:  # no client yet: a local cluster for this run only
        workers = n_jobs if n_jobs and n_jobs > 0 else (os.cpu_count() or 1)
        client = distributed.Client(
            n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0", processes=True
        )
    try:
        yield
    finally:
        if client is not None:
            client.close()
            client.cluster.close()


@contextlib.contextmanager
def backend_context(backend: str | None, *, n_jobs: int | None, ray_address: str | None = None) -> Iterator[None]:
    """Run the enclosed ``joblib.Parallel`` calls on ``backend`` with ``n_jobs`` workers."""
    import joblib

    if backend is not None and backend not in BACKENDS:
        raise InvalidInputError(f"unknown parallel backend {backend!r}; expected one of {BACKENDS}")
    with contextlib.ExitStack() as stack:
        if backend == "ray":
            stack.enter_context(_ray(ray_address))
        elif backend == "dask":
            stack.enter_context(_dask(n_jobs))
        settings = {k: v for k, v in (("backend", backend), ("n_jobs", n_jobs)) if v is not None}
        stack.enter_context(joblib.parallel_config(**settings))
        yield
