"""``memberscope attacks`` lists every registered attack with the access it needs and its paper."""

import json

import pytest
from cli_helpers import run_cli

from memberscope.attacks import ATTACKS
from memberscope.attacks._base import Attack
from memberscope.llm.attacks import LLM_ATTACKS


def _entries(capsys):
    code, out, _ = run_cli("attacks", "--json", capsys=capsys)
    assert code == 0
    return {(e["family"], e["name"]): e for e in json.loads(out)}


def test_every_registered_attack_is_listed_with_a_paper(capsys):
    entries = _entries(capsys)
    expected = {("classifier", n) for n in ATTACKS.names()} | {("language model", n) for n in LLM_ATTACKS.names()}
    assert set(entries) == expected
    for key, entry in entries.items():
        assert entry["paper"], f"{key} names no paper"
        assert entry["summary"] and entry["access"] and entry["commands"], key


def test_access_and_needs_follow_each_attacks_declaration(capsys):
    entries = _entries(capsys)
    assert entries[("classifier", "label-only")]["access"].startswith("API labels")
    assert entries[("classifier", "lira-online")]["access"].startswith("API probabilities")
    assert entries[("classifier", "lira-online")]["needs"] == "at least 2 reference models"
    assert entries[("classifier", "rmia-online")]["needs"] == "at least 1 reference model, population records"
    assert entries[("classifier", "loss")]["needs"] == ""
    assert "attack (an endpoint)" in entries[("classifier", "shadow")]["commands"]
    assert "attack (an endpoint)" not in entries[("classifier", "lira-online")]["commands"]
    assert entries[("language model", "min-k++")]["access"] == "LM weights (full next-token distribution)"
    assert entries[("language model", "min-k")]["access"] == "LM weights (token log-probabilities)"
    assert entries[("language model", "reference")]["needs"] == "a reference LM"
    assert "Carlini" in entries[("classifier", "lira-offline")]["paper"]
    assert "Shokri" in entries[("classifier", "shadow")]["paper"]


@pytest.fixture
def plugin_attack():
    class Canary(Attack):
        """A plug-in attack registered for this test."""

        name = "test-plugin"
        paper = "Nobody et al. 2026"
        min_reference_models = 3

        def score(self, target):  # pragma: no cover - never run
            raise NotImplementedError

    ATTACKS.register("test-plugin")(Canary)
    yield
    ATTACKS.unregister("test-plugin")


def test_a_newly_registered_attack_is_listed(plugin_attack, capsys):
    entry = _entries(capsys)[("classifier", "test-plugin")]
    assert entry["paper"] == "Nobody et al. 2026"
    assert entry["needs"] == "at least 3 reference models"


@pytest.mark.parametrize("width", [60, 80])
def test_the_text_listing_wraps_to_the_terminal(width, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = run_cli("attacks", capsys=capsys)
    assert code == 0
    assert all(len(line) <= width for line in out.splitlines())
    for name in [*ATTACKS.names(), *LLM_ATTACKS.names()]:
        assert f"  {name}: " in out
    assert "Attacks on a language model" in out
    assert "``" not in out
