"""The plugin class: provider registration, the missing-dependency message, unload."""

from __future__ import annotations

import sys

import pytest
from qgis.core import Qgis, QgsApplication

import ssm_downscaling


@pytest.fixture
def plugin(qgis_iface):
    qgis_iface.messageBar().clear_messages()
    p = ssm_downscaling.classFactory(qgis_iface)
    yield p
    p.unload()


def _registered() -> bool:
    return QgsApplication.processingRegistry().providerById("ssm") is not None


def test_init_gui_registers_the_provider_and_unload_removes_it(plugin, qgis_iface):
    registry = QgsApplication.processingRegistry()
    if _registered():  # a previous test's provider
        registry.removeProvider(registry.providerById("ssm"))
    plugin.initGui()
    assert _registered()
    assert qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning) == []
    plugin.unload()
    assert not _registered()


def test_missing_optional_packages_are_named_in_the_message_bar(plugin, qgis_iface, monkeypatch):
    # make numba and scikit-learn unimportable, as on a QGIS without them
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    registry = QgsApplication.processingRegistry()
    if _registered():
        registry.removeProvider(registry.providerById("ssm"))
    plugin.initGui()
    assert _registered()  # the plugin still loads
    (msg,) = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)
    assert "numba" in msg and "scikit-learn" in msg
    assert "python3-numba python3-sklearn" in msg and "pip install numba scikit-learn" in msg
