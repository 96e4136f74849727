"""Run the ``memberscope`` CLI in-process and capture its exit code and output."""

import pytest

from memberscope.cli import main


def run_cli(*args, capsys):
    """``(exit_code, stdout, stderr)`` of ``memberscope ARGS``; a normal return counts as exit code 0."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err
