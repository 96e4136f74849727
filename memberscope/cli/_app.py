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
        out[key.strip().replace("-", "_")] = yaml.safe_load(raw)
    return out
