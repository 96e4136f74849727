"""The ``memberscope`` command line. Bad input exits with code 2 and a message, never a traceback.

Each feature's commands live in a module of their own here and register themselves on :data:`app`.
"""

from __future__ import annotations

import sys

import typer

from memberscope.cli import (  # each module registers its commands on `app`
    audit_model,  # noqa: F401  (audit-model)
    core,  # noqa: F401  (audit, demo, datasets, attacks, gate, report, history)
    defend,  # noqa: F401  (defend)
    gateway,  # noqa: F401  (serve, keys)
    llm,  # noqa: F401  (llm-audit, llm-demo)
    redteam,  # noqa: F401  (recon, attack)
)
from memberscope.cli._app import app
from memberscope.exceptions import MemberscopeError, exit_code

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app; memberscope's errors exit with the code of their branch of the error tree
    (:data:`memberscope.exceptions.EXIT_CODES`: 2 for usage errors, 3 when the target failed), never a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except MemberscopeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exit_code(exc) or 1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:
        # Usage errors of the command-line parser (click's, vendored by newer typer) carry their
        # own message and exit code (2); found by shape so either packaging works.
        if hasattr(exc, "exit_code"):
            if hasattr(exc, "show"):
                exc.show()
            sys.exit(exc.exit_code)
        raise
