"""Test isolation shared by every test module."""

from __future__ import annotations

import os

import pytest

# The helper modules' asserts explain their failures as the tests' own do.
pytest.register_assert_rewrite("engines", "learn_pages", "support")


@pytest.fixture(autouse=True)
def _no_ci_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CI runner the CLI appends its summary to $GITHUB_STEP_SUMMARY: keep the
    tests' runs out of the real one (tests that want it set their own)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(autouse=True)
def _no_corpus_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option can be set as CORPUS_CLEAN_<NAME>: a developer's own settings must
    not change what the tests see (tests that want one set their own)."""
    for name in [n for n in os.environ if n.startswith("CORPUS_CLEAN_")]:
        monkeypatch.delenv(name)
