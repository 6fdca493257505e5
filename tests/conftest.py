"""Shared fixtures: the real judgment data beside the project, when it is there."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` relative to the repository root; the test is skipped when it is absent."""
    if not (SHARED_DATA / "judge" / "judgments.jsonl").is_file():
        pytest.skip(f"real judgment data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA
