"""The daily viewer dock: loading a series, stepping days, flags, pixel time series."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsPalettedRasterRenderer,
    QgsPointXY,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)

from ssm_downscaling.core.grid import Grid
from ssm_downscaling.core.series import write_day
from ssm_downscaling.ssm_plugin.viewer_dock import GROUP_NAME, ViewerDock

LAEA = "+proj=laea +lat_0=30 +lon_0=90 +datum=WGS84 +units=m +no_defs"
DAYS = [dt.date(2019, 6, 1) + dt.timedelta(days=i) for i in (0, 1, 2, 4, 5)]  # a gap on 06-04
LEGEND = "0 coarse observed; 1 seam-filled; 2 LST gap-filled under cloud; 3 both; 255 no estimate"


@pytest.fixture
def series(tmp_path):
    g = Grid.from_bounds(LAEA, (0, 0, 20_000, 10_000), 1000)
    ssm, flags = tmp_path / "ssm_1km", tmp_path / "flags"
    truth = {}
    for i, d in enumerate(DAYS):
        a = (0.05 + 0.05 * i + 0.001 * np.arange(g.size).reshape(g.shape)).astype(np.float32)
        a[0, 0] = np.nan
        write_day(ssm, "ssm", d, a, g)
        f = np.full(g.shape, i % 4, np.uint8)
        write_day(flags, "flags", d, f, g, description=LEGEND)
        truth[d] = a
    return ssm, flags, g, truth


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    d = ViewerDock(qgis_iface)
    yield d
    d.timer.stop()
    d.deleteLater()


def test_load_step_and_style(dock, series):
    ssm, flags, g, _ = series
    assert dock.set_product_folder(str(ssm))
    layer = QgsProject.instance().mapLayer(dock.layer_id)
    assert layer.source().endswith("ssm_2019-06-01.tif")
    group = QgsProject.instance().layerTreeRoot().findGroup(GROUP_NAME)
    assert group is not None and group.findLayer(layer.id()) is not None
    r = layer.renderer()
    assert isinstance(r, QgsSingleBandPseudoColorRenderer)
    assert (r.classificationMin(), r.classificationMax()) == (0.0, 0.5)  # fixed SSM range
    assert "2019-06-01: mean" in dock.dayInfo.text() and "m3/m3" in dock.dayInfo.text()

    dock.step(1)
    assert dock.current_date == dt.date(2019, 6, 2)
    same = QgsProject.instance().mapLayer(dock.layer_id)
    assert same.id() == layer.id() and same.source().endswith("ssm_2019-06-02.tif")
    dock.step(10)
    assert dock.current_date == DAYS[-1]
    dock.go_to(dt.date(2019, 6, 4))  # no file: nearest day (ties go to the earlier)
    assert dock.current_date == dt.date(2019, 6, 3)
    assert dock.dateEdit.date().toString("yyyy-MM-dd") == "2019-06-03"
    dock.playButton.setChecked(True)
    assert dock.timer.isActive() and dock.playButton.text() == "Stop"
    dock.go_to(DAYS[-1])
    dock.timer.timeout.emit()  # wraps to the first day
    assert dock.current_date == DAYS[0]
    dock.playButton.setChecked(False)
    assert not dock.timer.isActive()


def test_flags_layer_and_summary(dock, series):
    ssm, flags, _, _ = series
    dock.set_product_folder(str(ssm))
    assert dock.set_flags_folder(str(flags))
    fl = QgsProject.instance().mapLayer(dock.flag_layer_id)
    assert isinstance(fl.renderer(), QgsPalettedRasterRenderer)
    labels = [c.label for c in fl.renderer().classes()]
    # the legend of the plugin's ssm_flags.qml, the same Processing applies
    assert labels[0] == "0 coarse observed" and labels[2] == "2 LST gap-filled under cloud"
    assert "flags: coarse observed 100%" in dock.dayInfo.text()
    dock.step(2)
    assert fl.source().endswith("flags_2019-06-03.tif")
    assert "flags: LST gap-filled under cloud 100%" in dock.dayInfo.text()


def test_pixel_time_series(dock, series):
    ssm, flags, g, truth = series
    dock.set_product_folder(str(ssm))
    dock.set_flags_folder(str(flags))
    x, y = g.xy(np.array(3), np.array(7))  # centre of row 3, col 7
    crs = QgsCoordinateReferenceSystem()
    assert crs.createFromWkt(g.crs_wkt)
    values = dock.plot_pixel(QgsPointXY(float(x), float(y)), crs)
    assert np.allclose(values, [truth[d][3, 7] for d in DAYS], atol=1e-6)
    assert "5 of 5 days" in dock.pickInfo.text()
    labels = [ln.get_label() for ln in dock.axes.lines]
    assert "ssm_1km" in labels and "0 coarse observed" in labels
    nodata = dock.plot_pixel(QgsPointXY(*map(float, g.xy(np.array(0), np.array(0)))), crs)
    assert np.isnan(nodata).all() and "0 of 5 days" in dock.pickInfo.text()


def test_bad_folder_is_explained(dock, tmp_path):
    assert not dock.set_product_folder(str(tmp_path))
    assert "no raster with a date" in dock.dayInfo.text()
    assert not dock.daySlider.isEnabled()


def test_plugin_action_opens_the_dock(qgis_iface, qgis_new_project):
    import ssm_downscaling

    plugin = ssm_downscaling.classFactory(qgis_iface)
    plugin.initGui()
    try:
        plugin.action.setChecked(True)
        assert isinstance(plugin.dock, ViewerDock)
        plugin.action.setChecked(False)
        assert not plugin.dock.isVisible()
    finally:
        plugin.unload()
    assert plugin.dock is None


# --- issue 10: restyling, stale layers, plot, marker, stations, Temporal Controller ----------


def write_lst(tmp_path, g):
    lst, lflags = tmp_path / "lst_allweather", tmp_path / "lst_flags"
    for i, d in enumerate(DAYS):
        write_day(lst, "lst", d, np.full(g.shape, 280.0 + i, np.float32), g)
        write_day(lflags, "lst_flag", d, np.full(g.shape, i % 2, np.uint8), g,
                  description="0 observed clear-sky; 1 gap-filled; 255 no data")
    return lst, lflags


def test_restyles_when_the_folder_changes(dock, series, tmp_path):
    ssm, flags, g, _ = series
    lst, lflags = write_lst(tmp_path, g)
    dock.set_product_folder(str(ssm))
    dock.set_flags_folder(str(flags))
    dock.set_product_folder(str(lst))
    r = QgsProject.instance().mapLayer(dock.layer_id).renderer()
    assert (r.classificationMin(), r.classificationMax()) == (250.0, 330.0)  # lst.qml, not the SSM ramp
    dock.set_flags_folder(str(lflags))
    fl = QgsProject.instance().mapLayer(dock.flag_layer_id)
    labels = [c.label for c in fl.renderer().classes()]
    assert labels[:2] == ["0 observed (clear sky)", "1 gap-filled (cloudy)"]  # lst_flags.qml, not the SSM legend


def test_uncertainty_gets_its_own_style(dock, series, tmp_path):
    _, _, g, _ = series
    unc = tmp_path / "ssm_uncertainty"
    for d in DAYS:
        write_day(unc, "ssm_uncertainty", d, np.full(g.shape, 0.03, np.float32), g)
    dock.set_product_folder(str(unc))
    r = QgsProject.instance().mapLayer(dock.layer_id).renderer()
    assert (r.classificationMin(), r.classificationMax()) == (0.0, pytest.approx(0.1))


def test_clearing_the_flags_removes_their_layer(dock, series):
    ssm, flags, _, _ = series
    dock.set_product_folder(str(ssm))
    dock.set_flags_folder(str(flags))
    flag_id = dock.flag_layer_id
    assert QgsProject.instance().mapLayer(flag_id) is not None
    dock.flagsFolder.setFilePath("")
    assert QgsProject.instance().mapLayer(flag_id) is None and dock.flag_layer_id is None
    assert "flags:" not in dock.dayInfo.text()


def test_plot_hidden_before_a_pick_and_follows_the_series(dock, series, tmp_path):
    ssm, flags, g, _ = series
    lst, _ = write_lst(tmp_path, g)
    dock.set_product_folder(str(ssm))
    dock.set_flags_folder(str(flags))
    assert not dock.canvas.isVisibleTo(dock) and dock.plotHint.isVisibleTo(dock)  # no empty axes
    crs = QgsCoordinateReferenceSystem()
    assert crs.createFromWkt(g.crs_wkt)
    pt = QgsPointXY(*map(float, g.xy(np.array(3), np.array(7))))
    dock.plot_pixel(pt, crs)
    assert dock.canvas.isVisibleTo(dock)
    assert dock.marker is not None and dock.marker.isVisible()  # a marker at the picked pixel
    dock.flagsFolder.setFilePath("")
    dock.set_product_folder(str(lst))
    labels = [ln.get_label() for ln in dock.axes.lines]
    assert "lst_allweather" in labels and "ssm_1km" not in labels and "0 coarse observed" not in labels
    assert dock.axes.get_ylabel() == "K"


def test_station_observations_plotted_with_the_pixel(dock, series, tmp_path):
    ssm, _, g, _ = series
    from qgis.core import QgsCoordinateTransform

    crs = QgsCoordinateReferenceSystem()
    assert crs.createFromWkt(g.crs_wkt)
    pt = QgsPointXY(*map(float, g.xy(np.array(3), np.array(7))))
    ll = QgsCoordinateTransform(crs, QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance()).transform(pt)
    csv = tmp_path / "stations.csv"
    rows = ["station_id,lon,lat,date,sm"] + [f"S1,{ll.x():.6f},{ll.y():.6f},{d},0.2{i}" for i, d in enumerate(DAYS)]
    csv.write_text("\n".join(rows) + "\n")
    dock.set_product_folder(str(ssm))
    assert dock.set_stations_file(str(csv))
    layer = QgsProject.instance().mapLayer(dock.stations_layer_id)
    assert layer.isValid() and layer.featureCount() == len(DAYS)
    dock.plot_pixel(pt, crs)
    assert "station S1" in [ln.get_label() for ln in dock.axes.lines]
    assert "station S1" in dock.pickInfo.text()


def test_follows_and_drives_the_temporal_controller(qgis_iface, qgis_new_project, series):
    from qgis.core import QgsDateTimeRange, QgsInterval, QgsTemporalNavigationObject
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    from ssm_downscaling.processing_provider.compat import NAV_ANIMATED, TEMPORAL_DAYS

    ssm, _, _, _ = series
    canvas = qgis_iface.mapCanvas()
    nav = QgsTemporalNavigationObject(canvas)
    canvas.setTemporalController(nav)
    start = QDateTime(QDate(2019, 6, 1), QTime(0, 0))
    nav.setTemporalExtents(QgsDateTimeRange(start, start.addDays(6)))
    nav.setFrameDuration(QgsInterval(1, TEMPORAL_DAYS))
    nav.setNavigationMode(NAV_ANIMATED)
    d = ViewerDock(qgis_iface)
    try:
        d.set_product_folder(str(ssm))
        nav.setCurrentFrameNumber(2)
        assert d.current_date == dt.date(2019, 6, 3)  # follows
        layer = QgsProject.instance().mapLayer(d.layer_id)
        assert layer.temporalProperties().isActive()
        assert layer.temporalProperties().isVisibleInTemporalRange(nav.dateTimeRangeForFrameNumber(2))
        d.go_to(dt.date(2019, 6, 6))
        assert nav.currentFrameNumber() == 5  # drives
        d.followTemporal.setChecked(False)
        nav.setCurrentFrameNumber(0)
        assert d.current_date == dt.date(2019, 6, 6)
    finally:
        d.timer.stop()
        d.deleteLater()
        canvas.setTemporalController(None)
