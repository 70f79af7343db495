"""What a user sees after a run: every series of the run in one group named after it, day
layers with fixed temporal ranges (the Temporal Controller's frame picks the day), flags
off, styled from the plugin's .qml, and a .qml sidecar next to every output raster."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from qgis.core import (
    QgsDateTimeRange,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    from ssm_downscaling.core.scene import small_scene

    info = small_scene(tmp_path_factory.mktemp("scene") / "s", days=4)
    return {k: Path(v) for k, v in info.paths.items()}


@pytest.fixture
def provider(alg_ready):
    from ssm_testing import ensure_provider

    yield ensure_provider()
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().layerTreeRoot().removeAllChildren()


def run_and_load(alg_id: str, params: dict) -> dict:
    """Run as the toolbox does: results loaded into the current project by Processing."""
    from qgis import processing
    from qgis.core import QgsApplication
    from ssm_testing import handle_results

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = QgsProcessingFeedback()
    res = processing.run(alg_id, params, context=context, feedback=feedback)
    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    assert handle_results(alg, context, feedback, params)
    return res


def day_range(day: dt.date) -> QgsDateTimeRange:
    start = QDateTime(QDate(day.year, day.month, day.day), QTime(0, 0))
    return QgsDateTimeRange(start, start.addDays(1), True, False)


def test_downscale_outputs_grouped_temporal_styled(provider, scene, qgis_new_project, tmp_path):
    out = tmp_path / "run1"
    params = {"INPUT_SSM": str(scene["ssm_coarse"]), "INPUT_LST": str(scene["truth_lst"]),
              "INPUT_NDVI": str(scene["ndvi"]), "INPUT_ALBEDO": str(scene["albedo"]), "METHOD": "bilinear",
              "OUTPUT_SSM": str(out / "ssm_1km"), "OUTPUT_FLAGS": str(out / "ssm_flags"),
              "OUTPUT_UNCERTAINTY": str(out / "ssm_uncertainty"), "OUTPUT_COVERAGE": str(out / "coverage.csv")}
    run_and_load("ssm:downscalessm", params)

    # sidecars next to every output raster
    for sub in ("ssm_1km", "ssm_flags", "ssm_uncertainty"):
        tifs = sorted((out / sub).glob("*.tif"))
        assert len(tifs) == 4
        assert all(t.with_suffix(".qml").exists() for t in tifs), sub
    opened = QgsRasterLayer(str(sorted((out / "ssm_1km").glob("*.tif"))[0]), "from the browser", "gdal")
    assert isinstance(opened.renderer(), QgsSingleBandPseudoColorRenderer)
    assert opened.renderer().classificationMax() == pytest.approx(0.5)

    root = QgsProject.instance().layerTreeRoot()
    group = root.findGroup("1 km soil moisture: ssm_1km")
    assert group is not None and root.children()[0] is group
    names = [c.name() for c in group.children()]
    assert names == ["Soil moisture", "Uncertainty", "Flags"]
    flags = group.findGroup("Flags")
    assert not flags.itemVisibilityChecked()  # flags off by default
    assert group.findGroup("Soil moisture").itemVisibilityChecked()
    ssm_layers = [n.layer() for n in group.findGroup("Soil moisture").findLayers()]
    days = [dt.date(2019, 6, 1) + dt.timedelta(days=i) for i in range(4)]
    assert [lyr.name() for lyr in ssm_layers] == [f"Soil moisture {d}" for d in reversed(days)]  # latest on top
    assert isinstance(ssm_layers[0].renderer(), QgsSingleBandPseudoColorRenderer)
    flag_layer = flags.findLayers()[0].layer()
    assert isinstance(flag_layer.renderer(), QgsPalettedRasterRenderer)

    # the Temporal Controller's frame decides the day drawn
    for d in days:
        shown = [lyr.name() for lyr in ssm_layers if lyr.temporalProperties().isVisibleInTemporalRange(day_range(d))]
        assert shown == [f"Soil moisture {d}"]


def test_scene_stations_csv_is_a_point_layer(provider, qgis_new_project, tmp_path):
    params = {"SIZE_KM": 72, "DAYS": 3, "STATIONS": 4, "SPINUP_DAYS": 5, "OUTPUT": str(tmp_path / "scene")}
    run_and_load("ssm:samplescene", params)
    root = QgsProject.instance().layerTreeRoot()
    group = root.findGroup("Sample scene: scene")
    assert group is not None
    first = group.children()[0]
    layer = first.layer()
    assert layer.name() == "Stations (CSV)" and layer.geometryType() == 0 and layer.featureCount() == 4 * 3
    assert layer.temporalProperties().isActive()
    assert any(c.name() == "True soil moisture (1 km)" for c in group.children())


def test_temporal_controller_spans_the_loaded_days(provider, scene, qgis_iface, qgis_new_project, tmp_path):
    from qgis.core import QgsTemporalNavigationObject

    from ssm_downscaling.ssm_plugin.temporal import TemporalSync

    nav = QgsTemporalNavigationObject()
    qgis_iface.mapCanvas().setTemporalController(nav)
    sync = TemporalSync(qgis_iface)
    try:
        out = tmp_path / "run2"
        run_and_load("ssm:downscalessm", {
            "INPUT_SSM": str(scene["ssm_coarse"]), "INPUT_LST": str(scene["truth_lst"]),
            "INPUT_NDVI": str(scene["ndvi"]), "INPUT_ALBEDO": str(scene["albedo"]), "METHOD": 3,
            "OUTPUT_SSM": str(out / "ssm_1km"), "OUTPUT_FLAGS": str(out / "ssm_flags"),
            "OUTPUT_UNCERTAINTY": str(out / "ssm_uncertainty"), "OUTPUT_COVERAGE": str(out / "coverage.csv")})
        rng = sync.update()
        assert rng.begin().date() == QDate(2019, 6, 1) and rng.end().date() == QDate(2019, 6, 5)
        assert nav.totalFrameCount() == 4
        layers = [n.layer() for n in QgsProject.instance().layerTreeRoot().findGroup("Soil moisture").findLayers()]
        for frame in range(4):
            shown = [lyr.name() for lyr in layers
                     if lyr.temporalProperties().isVisibleInTemporalRange(nav.dateTimeRangeForFrameNumber(frame))]
            assert shown == [f"Soil moisture 2019-06-0{frame + 1}"]
    finally:
        sync.disconnect_all()
        qgis_iface.mapCanvas().setTemporalController(None)
