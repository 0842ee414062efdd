"""Test isolation shared by every test module."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ci_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CI runner the CLI appends its summary to $GITHUB_STEP_SUMMARY: keep the
    tests' runs out of the real one (tests that want it set their own)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
