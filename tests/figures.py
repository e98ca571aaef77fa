"""Figures measured by the tests (bad-input kinds tried, requests sent, errors seen, recovery times),
printed in one block at the end of the run by conftest's `pytest_terminal_summary`."""

from __future__ import annotations

FIGURES: dict[str, str] = {}


def record(name: str, value: object) -> None:
    """Keep one figure for the end-of-run summary; a later value of the same name replaces it."""
    FIGURES[name] = str(value)
