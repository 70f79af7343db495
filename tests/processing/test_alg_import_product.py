"""ssm:importproduct and ssm:listgranules through processing.run (pytest-qgis) and
qgis_process, on the real sample files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from ssm_testing import run_qgis_process

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def import_ready(alg_ready):
    assert alg_ready.algorithmById("ssm:importproduct") is not None
    assert alg_ready.algorithmById("ssm:listgranules") is not None
    return alg_ready


def test_import_esa_cci_on_an_extent_grid(import_ready, shared_data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from ssm_downscaling.core.series import DailySeries

    progress: list[float] = []

    class Feedback(QgsProcessingFeedback):
        def setProgress(self, p):
            progress.append(p)
            super().setProgress(p)

    res = processing.run("ssm:importproduct", {
        "PRODUCT": "esa_cci",
        "INPUT_FOLDER": str(shared_data / "esa_cci"),
        "PATTERN": "ESACCI*.nc",
        "GRID_MODE": "extent",
        "EXTENT": "100,110,30,40 [EPSG:4326]",
        "RESOLUTION": 0.25,
        "START_DATE": "2016-06-07",
        "OUTPUT": str(tmp_path / "cci"),
    }, feedback=Feedback(), context=QgsProcessingContext())
    assert res["DAYS"] == 1 and res["FILES_READ"] == 1 and res["FILES_SKIPPED"] == 0
    series = DailySeries.from_folder(res["OUTPUT"])
    assert series.dates == [dt.date(2016, 6, 7)]
    g = series.grid()
    assert g.shape == (40, 40) and g.transform[0] == pytest.approx(100.0) and g.transform[3] == pytest.approx(40.0)
    arr = series.read(dt.date(2016, 6, 7))
    assert np.nanmax(arr) <= 1.0 and np.isfinite(arr).mean() > 0.3
    assert progress and progress == sorted(progress) and progress[-1] == pytest.approx(100.0)


def test_import_modis_by_index_with_a_reference_grid_and_bad_files(import_ready, shared_data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.readers.modis_tiles import tile_grid
    from ssm_downscaling.core.series import DailySeries, write_raster

    # a 2 km reference grid in geographic coordinates over the clear part of tile h11v05 (Illinois)
    ref = Grid.from_bounds(4326, (-90.0, 38.5, -88.0, 40.0), 0.02)
    write_raster(tmp_path / "ref.tif", np.zeros(ref.shape, dtype=np.float32), ref)
    bad = tmp_path / "MOD11A1.A2021228.h11v05.061.2021229000000.hdf"
    bad.write_bytes(b"not an HDF file")
    products = list(__import__("ssm_downscaling.core.readers.products", fromlist=["PRODUCTS"]).PRODUCTS)
    res = processing.run("ssm:importproduct", {
        "PRODUCT": products.index("mod11_lst"),  # qgis_process passes numbers
        "INPUT_FILES": [str(shared_data / "modis/MOD11A1.A2021227.h11v05.061.2021228105320.hdf"), str(bad)],
        "GRID_MODE": 1,
        "REFERENCE": str(tmp_path / "ref.tif"),
        "LST_QC": "good",
        "OUTPUT": str(tmp_path / "lst"),
    }, feedback=QgsProcessingFeedback(), context=QgsProcessingContext())
    assert res["DAYS"] == 1 and res["FILES_SKIPPED"] == 1 and bad.name in res["SUMMARY"]
    series = DailySeries.from_folder(res["OUTPUT"])
    assert series.grid() == ref
    arr = series.read(dt.date(2021, 8, 15))
    assert np.isfinite(arr).any() and 260 < np.nanmin(arr) and np.nanmax(arr) < 340
    assert tile_grid(11, 5).covering(ref)  # the reference lies inside the tile


def test_bad_enum_and_missing_inputs_are_refused(import_ready, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException):
        processing.run("ssm:importproduct", {"PRODUCT": "modis", "INPUT_FOLDER": str(tmp_path),
                                             "OUTPUT": str(tmp_path / "o")})
    with pytest.raises(QgsProcessingException):
        processing.run("ssm:importproduct", {"PRODUCT": 99, "INPUT_FOLDER": str(tmp_path), "OUTPUT": str(tmp_path / "o")})
    with pytest.raises(QgsProcessingException):
        processing.run("ssm:importproduct", {"PRODUCT": "lprm", "OUTPUT": str(tmp_path / "o")})


def test_list_granules(import_ready, tmp_path):
    from qgis import processing

    res = processing.run("ssm:listgranules", {
        "PRODUCTS": ["MOD11A1", 0], "EXTENT": "116.3,116.5,39.8,39.9 [EPSG:4326]",
        "START_DATE": "2019-06-01", "END_DATE": "2019-06-02", "OUTPUT": str(tmp_path / "g.txt")})
    lines = Path(res["OUTPUT"]).read_text().splitlines()
    assert "MOD11A1.A2019152.h26v05.061.*.hdf" in lines and res["GRANULES"] == 4  # listed twice, by name and number


@pytest.mark.slow
def test_qgis_process_imports_lprm_by_numbers(shared_data, tmp_path):
    out = tmp_path / "lprm"
    r = run_qgis_process(["run", "ssm:importproduct", "--json", "--", "PRODUCT=0",
                          f"INPUT_FOLDER={shared_data / 'amsr2'}", "GRID_MODE=2",
                          "EXTENT=73,135,18,54 [EPSG:4326]", "RESOLUTION=0.25", "LPRM_BAND=2",
                          f"OUTPUT={out}"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(r.stdout[r.stdout.index("{"):])["results"]
    assert res["DAYS"] == 1 and (out / "ssm_2015-04-01.tif").exists()
    from ssm_downscaling.core.series import read_raster

    arr = read_raster(out / "ssm_2015-04-01.tif")
    assert arr.shape == (144, 248) and 0 <= np.nanmin(arr) and np.nanmax(arr) <= 1


def test_cancelled_run_leaves_no_day(import_ready, shared_data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    fb = QgsProcessingFeedback()
    fb.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("ssm:importproduct", {"PRODUCT": "esa_cci", "INPUT_FOLDER": str(shared_data / "esa_cci"),
                                             "OUTPUT": str(tmp_path / "o")}, feedback=fb, context=QgsProcessingContext())
    assert not list((tmp_path / "o").glob("*.tif")) if (tmp_path / "o").exists() else True


def test_native_grid_cropped_to_an_extent(import_ready, shared_data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from ssm_downscaling.core.readers.lprm import read_lprm
    from ssm_downscaling.core.series import DailySeries

    res = processing.run("ssm:importproduct", {
        "PRODUCT": "lprm", "INPUT_FOLDER": str(shared_data / "amsr2"), "GRID_MODE": "native",
        "EXTENT": "73.1,134.9,18.1,53.9 [EPSG:4326]", "OUTPUT": str(tmp_path / "o")},
        feedback=QgsProcessingFeedback(), context=QgsProcessingContext())
    series = DailySeries.from_folder(res["OUTPUT"])
    g = series.grid()
    # the 0.25 degree cells kept: 73.0..135.0 E, 18.0..54.0 N
    assert g.transform == (73.0, 0.25, 0.0, 54.0, 0.0, -0.25) and g.shape == (144, 248)
    native = read_lprm(shared_data / "amsr2/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4")
    r0, c0, nr, nc = native.grid.window_of(g)
    assert np.array_equal(series.read(series.start), native.data[r0 : r0 + nr, c0 : c0 + nc], equal_nan=True)
