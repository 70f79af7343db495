"""Fixtures shared by every test folder."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from ssm_testing import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real sample data); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA}")
    return SHARED_DATA


ALGORITHMS = ("ssm:samplescene", "ssm:gapfilllst", "ssm:downscalessm", "ssm:validatestations")
_KEEP: list = []  # the provider's Python object must outlive its use by the registry


@pytest.fixture(scope="session")
def alg_ready(qgis_app, qgis_processing):
    """The processing registry with the plugin's provider and all its algorithms; every layer
    a run asked Processing to load is released before QGIS shuts down (layers
    garbage-collected after ``exitQgis`` crash the interpreter at exit)."""
    from qgis.core import QgsApplication, QgsProject

    from ssm_downscaling.processing_provider.outputs import RunGroupPostProcessor
    from ssm_downscaling.processing_provider.provider import SsmProvider

    reg = QgsApplication.processingRegistry()
    if reg.providerById("ssm") is None:
        _KEEP.append(SsmProvider())
        assert reg.addProvider(_KEEP[-1])
    missing = [a for a in ALGORITHMS if reg.algorithmById(a) is None]
    assert not missing, f"algorithms not loaded: {missing}"
    yield reg
    QgsProject.instance().removeAllMapLayers()
    RunGroupPostProcessor._keep.clear()
    gc.collect()
