"""Command-line options that several commands share, declared once (help lists come from the registries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli._app import parse_params
from memberscope.exceptions import InvalidInputError


def _recipes() -> str:
    from memberscope.recipes import RECIPES

    return ", ".join(RECIPES.names())


def _attacks() -> str:
    from memberscope.attacks import names

    return ", ".join(names())


def _backends() -> str:
    from memberscope.parallel import BACKENDS

    return ", ".join(BACKENDS)


# The data.
DATASET = typer.Option(None, help="Dataset name (see `memberscope datasets`) or a CSV/Parquet/NPZ path.")
DATA_DIR = typer.Option(None, help="Folder holding the dataset's files (e.g. Fashion-MNIST IDX).")
LABEL_COLUMN = typer.Option(None, help="Label column of a user table.")
GROUP_COLUMN = typer.Option(None, help="Group column of a user table (per-group risk).")
ID_COLUMN = typer.Option(None, help="Id column of a user table (default: a record's id is its row number).")
N_RECORDS = typer.Option(None, help="Use a seeded random subset of this many records.")
POOL_SIZE = typer.Option(None, help="Records in the audit pool (half become target members).")
POPULATION_SIZE = typer.Option(None, help="Population records no model trains on.")
# The models.
MODEL = typer.Option(None, help=f"Recipe: {_recipes()}.")
MODEL_PARAM = typer.Option([], "--model-param", help="Recipe hyperparameter KEY=VALUE (repeatable).")
REFERENCE_MODELS = typer.Option(None, "--reference-models", "-k", help="Number of reference models K.")
SEED = typer.Option(None, help="Seed for masks, training and bootstrap.")
TARGETS = typer.Option(
    None,
    "--targets",
    help="Training draws the figures cover: the target and N-1 reference models playing it in turn "
    "(leave-one-out); results get each metric's mean and spread over draws. Default 1.",
)
MEMBER_PRIOR = typer.Option(
    None,
    "--member-prior",
    help="Share of members among the people the model could be asked about, e.g. 0.01: each attack's "
    "precision (PPV) and the membership probability use it. Default: the game's member share.",
)
# The attacks and metrics.
ATTACKS = typer.Option(None, help=f"Comma-separated attacks, or 'all': {_attacks()}.")
FPR = typer.Option(None, help="Comma-separated FPRs to report, each in (0, 1).")
N_BOOTSTRAP = typer.Option(None, help="Bootstrap replicates for the confidence intervals.")
# How training runs.
TRAIN_MODE = typer.Option(
    None, help="sequential, or vectorized: reference models trained as one batch (torch mlp/cnn/logreg)."
)
N_JOBS = typer.Option(
    None, "--n-jobs", help="Train models as parallel joblib jobs on this many workers (-1: all CPUs)."
)
BACKEND = typer.Option(None, help=f"joblib backend for --n-jobs: {_backends()}.")
RAY_ADDRESS = typer.Option(
    None, help="Ray cluster to train on with --backend ray (default: $RAY_ADDRESS, else a local one)."
)
MEMORY_BUDGET = typer.Option(
    None, help="Memory for vectorized training batches, e.g. 2GiB; reference models are split to fit."
)
PRECISION = typer.Option(
    None,
    help="Arithmetic of vectorized reference models: fp32 (default: the same numbers on every machine), auto "
    "(the fastest that passes a check against fp32 on the first models; numbers then depend on the CPU), "
    "bf16-matmul or bf16. The target is always fp32.",
)
CACHE_DIR = typer.Option(None, help="Where trained models and outputs are cached.")
NO_CACHE = typer.Option(False, "--no-cache", help="Do not read or write the model cache.")
PROGRESS = typer.Option(None, "--progress/--no-progress", help="Progress bars (default: on a terminal).")


def run_values(
    *,
    model_param: list[str],
    fpr: str | None,
    no_cache: bool,
    **flags: Any,
) -> dict[str, Any]:
    """The configuration fields the shared options set (flags left at None are not set)."""
    values = {k: v for k, v in flags.items() if v is not None}
    if model_param:
        values["model_params"] = parse_params(model_param, "--model-param")
    if fpr is not None:
        try:
            values["fprs"] = [float(f) for f in fpr.split(",") if f.strip()]
        except ValueError:
            raise InvalidInputError(f"--fpr {fpr!r} must be comma-separated numbers in (0, 1)") from None
    if no_cache:
        values["use_cache"] = False
    return values


def out_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)
