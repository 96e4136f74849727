"""The Typer app every command module registers on, and helpers the commands share."""

from __future__ import annotations

from typing import Any

import typer

from memberscope.cli._help import HelpGroup, version_callback
from memberscope.exceptions import InvalidInputError

app = typer.Typer(
    name="memberscope",
    help="Measure, attack and defend membership-inference leakage of machine-learning models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=HelpGroup,
)


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Measure, attack and defend membership-inference leakage of machine-learning models."""


def console():
    from rich.console import Console

    return Console()


def parse_params(values: list[str], what: str) -> dict[str, Any]:
    """``["epochs=20", "hidden=[128,128]"]`` → ``{"epochs": 20, "hidden": [128, 128]}`` (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{what} {item!r} is not of the form KEY=VALUE")
        value = yaml.safe_load(raw)
        glued = _glued_keys(value)
        if glued:
            fixed = glued[0].replace(":", ": ", 1)
            raise InvalidInputError(
                f"{what} {item!r}: YAML read {glued[0]!r} as one key without a value; YAML needs a space after the "
                f"colon ({fixed!r}), e.g. {key}={{{fixed}}}"
            )
        out[key.strip().replace("-", "_")] = value
    return out


def _glued_keys(value: Any) -> list[str]:
    """Mapping keys such as ``"n_estimators:10"`` with no value: ``{n_estimators:10}`` written without YAML's space."""
    if isinstance(value, dict):
        found = [k for k, v in value.items() if isinstance(k, str) and ":" in k and v is None]
        return found + [k for v in value.values() for k in _glued_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _glued_keys(v)]
    return []
