"""Fixtures of the core tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _grid_cache_folder(tmp_path_factory):
    """The on-disk grid cache (:mod:`ssm_downscaling.core.gridcache`) in a folder of this
    session, not the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SSM_GRID_CACHE", str(tmp_path_factory.mktemp("grid-cache")))
    yield
    mp.undo()
