"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from ssm_testing import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real sample data); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA}")
    return SHARED_DATA
