"""The "run the whole chain" dialog: gap-fill -> downscale -> validate as background tasks,
results opened in the project."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsProject

from ssm_downscaling.ssm_plugin.chain_dialog import ChainDialog, scene_inputs


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    from ssm_downscaling.core.scene import small_scene

    info = small_scene(tmp_path_factory.mktemp("scene") / "s", days=4)
    return Path(info.out_dir)


def wait(dialog: ChainDialog, timeout: float = 600) -> tuple[bool, str]:
    result: list = []
    dialog.finished_chain.connect(lambda ok, msg: result.append((ok, msg)))
    t0 = time.time()
    while not result and time.time() - t0 < timeout:
        QgsApplication.processEvents()
        time.sleep(0.05)
    assert result, "the chain did not finish"
    return result[0]


def test_runs_the_chain_in_the_background(alg_ready, qgis_iface, qgis_new_project, scene, tmp_path, monkeypatch):
    from processing.gui import Postprocessing
    from ssm_testing import ensure_provider

    ensure_provider()
    monkeypatch.setattr(Postprocessing, "iface", None, raising=False)  # pytest-qgis's iface is a mock there
    d = ChainDialog()
    d.set_inputs(scene_inputs(scene, tmp_path / "chain"))
    d.method.setCurrentIndex(3)  # bilinear: fast
    d.minObs.setValue(3)
    assert d.run()
    assert not d.runButton.isEnabled() and d.cancelButton.isEnabled()
    ok, msg = wait(d)
    assert len(list((tmp_path / "chain" / "ssm_1km").glob("ssm_*.tif"))) == 4
    root = QgsProject.instance().layerTreeRoot()
    assert root.findGroup("All-weather LST: lst_allweather") is not None
    assert root.findGroup("1 km soil moisture: ssm_1km") is not None
    assert ok, msg
    assert (tmp_path / "chain" / "validation" / "report.html").exists()
    assert d.progress.value() == 100
    assert d.runButton.isEnabled()
    QgsProject.instance().removeAllMapLayers()


def test_missing_inputs_are_named(qgis_app):
    d = ChainDialog()
    assert not d.run()
    assert "Clear-sky LST folder" in d.status.text()
