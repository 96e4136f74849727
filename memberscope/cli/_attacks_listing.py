"""``memberscope attacks``: every registered attack as a block of short lines that wraps at any width."""

from __future__ import annotations

import json
import textwrap

import typer

__all__ = ["print_attacks"]

SECTIONS = {
    "classifier": "Attacks on a classifier",
    "language model": "Attacks on a language model",
}
LABEL_WIDTH = 10  # "  access: "


def _block(entry, width: int) -> list[str]:
    indent = " " * (2 + LABEL_WIDTH)
    lines = textwrap.wrap(entry.summary, width, initial_indent=f"  {entry.name}: ", subsequent_indent=indent)
    for label, value in (
        ("access", entry.access),
        ("needs", entry.needs or "the target only"),
        ("paper", entry.paper),
        ("run by", entry.commands),
    ):
        first = f"  {label + ':':<{LABEL_WIDTH - 2}}"
        lines += textwrap.wrap(value, width, initial_indent=indent[: -len(first)] + first, subsequent_indent=indent)
    return lines


def print_attacks(*, as_json: bool, width: int) -> None:
    """Print :func:`memberscope.attacks.catalog.catalog` as JSON or as blocks at most ``width`` columns wide."""
    from memberscope.attacks.catalog import catalog

    entries = catalog()
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False))
        return
    for family, title in SECTIONS.items():
        typer.echo(title)
        for entry in (e for e in entries if e.family == family):
            typer.echo("\n".join(_block(entry, width)))
        typer.echo("")
