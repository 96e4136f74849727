"""The ``memberscope`` command line. Bad input exits with code 2 and a message, never a traceback.

Each feature's commands live in a module of their own here and register themselves on :data:`app`.
"""

from __future__ import annotations

import sys

import typer

from memberscope.cli import core  # noqa: F401  (registers the commands)
from memberscope.cli import llm as _llm  # noqa: F401  (registers llm-audit and llm-demo)
from memberscope.cli._app import app
from memberscope.exceptions import InvalidInputError, MemberscopeError, MissingDependencyError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, turning memberscope's input errors into exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except (InvalidInputError, MissingDependencyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except MemberscopeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
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
