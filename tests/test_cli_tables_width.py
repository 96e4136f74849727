"""`memberscope datasets` and `memberscope history` at an 80- and a 100-column terminal: nothing cut, no value
split across lines (the first column's long paths may fold, and are whole again when read down the column)."""

import io

import pytest
from rich.console import Console

from memberscope.cli.core import datasets_table, history_table
from memberscope.datasets import available


def _render(table, width):
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(table)
    lines = buffer.getvalue().splitlines()
    assert lines and all(len(line) <= width for line in lines)
    assert not any("…" in line for line in lines), "a cell was cut"
    return lines


def _first_column(lines):
    """The text of the table's first column, read down it (folded cells joined again)."""
    return "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))


@pytest.mark.parametrize("width", [80, 100])
def test_datasets_table_fits_without_cutting(width):
    infos = available()
    lines = _render(datasets_table(infos), width)
    text = " ".join(" ".join(line.replace("│", " ").split()) for line in lines)
    for info in infos:
        assert any(f"│ {info.name} " in line for line in lines), info.name  # the name whole, on one line
        assert all(word in text.split() for word in info.description.split()), info.description
        assert f"{info.n_records:,}" in text


ROWS = [
    {
        "created": "2026-11-30T13:25:54+0000",
        "dataset": "purchase-synthetic",
        "model": "mlp",
        "model_name": "churn-model",
        "model_version": "v12",
        "reference_models": 16,
        "attack": "modified-entropy",
        "auc": 0.73456,
        "tpr_at_1pct": 0.1234,
        "tpr_at_1pct_low": 0.1001,
        "tpr_at_1pct_high": 0.1502,
        "out_dir": "runs/2026-11-30/purchase-synthetic-mlp-16-references-seed-0",
    },
    {
        "created": "2026-11-29T08:00:00+0000",
        "dataset": "breast-cancer-original",
        "model": "random-forest",
        "model_name": None,
        "model_version": None,
        "reference_models": 4,
        "attack": "rmia-online",
        "auc": 0.5,
        "tpr_at_1pct": None,
        "tpr_at_1pct_low": None,
        "tpr_at_1pct_high": None,
        "out_dir": None,
    },
]


@pytest.mark.parametrize("width", [80, 100])
def test_history_table_fits_without_cutting_or_splitting_a_value(width):
    lines = _render(history_table(ROWS), width)
    for value in ("2026-11-30 13:25:54+0000", "purchase-synthetic", "churn-model@v12", "modified-entropy", "0.735",
                  "12.3%", "(10.0–15.0%)", "breast-cancer-original", "random-forest", "rmia-online", "│ 16 │",
                  "run: when it was created"):  # fmt: skip
        assert any(value in line for line in lines), value
    assert "runs/2026-11-30/purchase-synthetic-mlp-16-references-seed-0" in _first_column(lines)
