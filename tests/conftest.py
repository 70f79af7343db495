"""Fixtures shared by every test folder."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from ssm_testing import SHARED_DATA, ensure_provider


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real sample data); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA}")
    return SHARED_DATA


ALGORITHMS = ("ssm:samplescene", "ssm:gapfilllst", "ssm:downscalessm", "ssm:validatestations")


@pytest.fixture(scope="session")
def alg_ready(qgis_app, qgis_processing):
    """The processing registry with the plugin's provider and all its algorithms; every layer
    a run asked Processing to load is released before QGIS shuts down (layers
    garbage-collected after ``exitQgis`` crash the interpreter at exit)."""
    from qgis.core import QgsProject

    from ssm_downscaling.processing_provider.outputs import RunGroupPostProcessor

    reg = ensure_provider()
    missing = [a for a in ALGORITHMS if reg.algorithmById(a) is None]
    assert not missing, f"algorithms not loaded: {missing}"
    yield reg
    QgsProject.instance().removeAllMapLayers()
    RunGroupPostProcessor._keep.clear()
    gc.collect()
