"""How the command line reads at a terminal: --version, defaults in every --help, no type tags, 80 columns."""

import re

import pytest
import typer.main
from cli_helpers import run_cli

from memberscope import __version__
from memberscope.cli import app


def _command_paths():
    paths = [()]

    def walk(prefix, command):
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append((*prefix, name))
            walk((*prefix, name), sub)

    walk((), typer.main.get_command(app))
    return paths


COMMANDS = _command_paths()
TYPE_TAG = re.compile(r"<(int|str|bool|float|path|list\[str\]|[a-z_]+)>|\b(INTEGER|TEXT|FLOAT|BOOLEAN|PATH)\b")


def test_version_prints_the_package_version(capsys):
    code, out, _ = run_cli("--version", capsys=capsys)
    assert code == 0
    assert out.strip() == f"memberscope {__version__}"


def test_every_command_is_covered():
    names = {p[-1] for p in COMMANDS if p}
    assert {"audit", "defend", "attack", "llm-demo", "keys", "create"} <= names


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "memberscope")
def test_help_fits_the_terminal_without_type_tags(path, width, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = run_cli(*path, "--help", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) > 3
    for line in lines:
        assert len(line) <= width, line
        assert "…" not in line, f"cut at {width} columns: {line!r}"
        assert not TYPE_TAG.search(line), f"type tag: {line!r}"


def _help(capsys, monkeypatch, *args):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(*args, "--help", capsys=capsys)
    assert code == 0
    return out


def _option_block(out, option):
    """The help text of ``option`` (its row and the rows continuing it), joined into one line."""
    block, inside = [], False
    for line in out.splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[0].startswith("--"):
            inside = cells[0] == option
        if inside:
            block.append(line.strip("│ "))
    return " ".join(block)


def test_audit_help_shows_the_configuration_defaults(capsys, monkeypatch):
    from memberscope.config import AuditConfig

    out = _help(capsys, monkeypatch, "audit")
    assert f"[default: {AuditConfig.reference_models}]" in _option_block(out, "--reference-models")
    assert f"[default: {AuditConfig.n_bootstrap}]" in _option_block(out, "--n-bootstrap")
    assert "[default: 0.1, 0.01, 0.001, 0.0001]" in _option_block(out, "--fpr")
    assert "[default: mlp]" in _option_block(out, "--model")
    assert "[default: (" not in out


def test_defend_help_shows_its_own_defaults(capsys, monkeypatch):
    from memberscope.defenses.evaluate import DefendConfig

    out = _help(capsys, monkeypatch, "defend")
    assert f"[default: {DefendConfig.reference_models}]" in _option_block(out, "--reference-models")
    assert "[default: none, l2" in _option_block(out, "--defenses")


def test_audit_model_help_shows_run_defaults_but_no_recipe_for_the_users_model(capsys, monkeypatch):
    out = _help(capsys, monkeypatch, "audit-model")
    assert "[default: 16]" in _option_block(out, "--reference-models")
    assert "[default:" not in _option_block(out, "--model")


def test_an_option_left_unset_still_defers_to_the_config_file(tmp_path, capsys):
    """Showing a default must not make it a value: --config's setting is kept when the flag is absent."""
    cfg = tmp_path / "audit.yaml"
    cfg.write_text("reference_models: -3\n")
    code, _, err = run_cli("audit", "--config", str(cfg), capsys=capsys)
    assert code == 2
    assert "reference_models" in err


PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "memberscope")
def test_help_and_usage_lines_hold_no_unformatted_placeholder(path, capsys, monkeypatch):
    # typer writes a required argument as {results} in the usage line, which reads as a template left unfilled
    monkeypatch.setenv("COLUMNS", "100")
    _, help_out, _ = run_cli(*path, "--help", capsys=capsys)
    code, out, err = run_cli(*path, "--no-such-option", capsys=capsys)
    assert code == 2
    for text in (help_out, out + err):
        assert "Usage: " in text
        assert not PLACEHOLDER.search(text), PLACEHOLDER.search(text).group()
