"""``memberscope verify``: check an evidence bundle (``memberscope report --format evidence``) byte for byte."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from memberscope.cli._app import app


def print_bundle(bundle) -> None:
    """Say where a bundle was written and print its manifest digest (the value to keep); warn about input files
    that changed since the run."""
    typer.echo(f"wrote {bundle.path} ({len(bundle.files)} files)")
    typer.echo(f"manifest sha256: {bundle.manifest_sha256}")
    typer.echo(f"keep this digest; check the bundle later with: memberscope verify {bundle.path} --digest HEX")
    for entry in bundle.changed_inputs:
        typer.echo(f"warning: input {entry['role']} {entry['path']}: {entry['status']}", err=True)


@app.command()
def verify(
    bundle: Path = typer.Argument(..., help="An evidence bundle written by `memberscope report --format evidence`."),
    digest: str | None = typer.Option(
        None, "--digest", help="The manifest SHA-256 printed when the bundle was written (checks the manifest too)."
    ),
    check_inputs: bool = typer.Option(
        False, "--check-inputs", help="Also digest the model and data files the bundle names, where they are now."
    ),
) -> None:
    """Check an evidence bundle: exit 0 when every file matches its manifest, 1 when anything changed, 2 on bad
    input."""
    from memberscope.report.evidence import verify_bundle

    result = verify_bundle(bundle, digest=digest, check_inputs=check_inputs)
    typer.echo(result.summary())
    for note in result.notes:
        typer.echo(f"note: {note}")
    if digest is None and result.ok:
        typer.echo("note: without --digest only the files' agreement with the manifest is checked, not the manifest")
    if not result.ok:
        sys.exit(1)
