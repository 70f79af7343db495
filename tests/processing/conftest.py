"""Fixtures of the Processing tests: the ``ssm`` provider registered once, and every layer a
run asked Processing to load released before QGIS shuts down (layers garbage-collected
after ``exitQgis`` crash the interpreter at exit)."""

from __future__ import annotations

import gc

import pytest

ALGORITHMS = ("ssm:samplescene", "ssm:gapfilllst", "ssm:downscalessm", "ssm:validatestations")
_KEEP: list = []  # the provider's Python object must outlive its use by the registry


@pytest.fixture(scope="session")
def alg_ready(qgis_app, qgis_processing):
    """The processing registry with the plugin's provider and all its algorithms."""
    from qgis.core import QgsApplication, QgsProject

    from ssm_downscaling.processing_provider.base import StylePostProcessor
    from ssm_downscaling.processing_provider.provider import SsmProvider

    reg = QgsApplication.processingRegistry()
    if reg.providerById("ssm") is None:
        _KEEP.append(SsmProvider())
        assert reg.addProvider(_KEEP[-1])
    missing = [a for a in ALGORITHMS if reg.algorithmById(a) is None]
    assert not missing, f"algorithms not loaded: {missing}"
    yield reg
    QgsProject.instance().removeAllMapLayers()
    StylePostProcessor._keep.clear()
    gc.collect()
