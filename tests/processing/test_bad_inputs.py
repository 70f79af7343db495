"""The bad-input catalogue through processing.run (issue 9): every case fails with a message
naming the input and the fix, writes nothing and changes no input (hashed before and after).

Each case builds its parameters from a tiny shared scene (72 km x 72 km, 4 days; built once)
and, where it needs a faulty input, a faulty copy in its own folder.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from badinput_scene import DAYS, build_scene, copy_series, files_under, tree_hash, write_stations

DS, GF, VS = "ssm:downscalessm", "ssm:gapfilllst", "ssm:validatestations"


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> dict:
    return build_scene(tmp_path_factory.mktemp("badscene"))


def run_alg(alg: str, params: dict, feedback=None) -> dict:
    """processing.run with its own context, whose layers are released before returning."""
    from qgis import processing
    from qgis.core import QgsProcessingContext

    context = QgsProcessingContext()
    try:
        return processing.run(alg, params, feedback=feedback, context=context)
    finally:
        context.setLayersToLoadOnCompletion({})
        context.temporaryLayerStore().removeAllMapLayers()
        del context
        gc.collect()


def ds_params(s: dict, d: Path, **kw) -> dict:
    p = {"INPUT_SSM": str(s["ssm"]), "INPUT_LST": str(s["lst"]), "INPUT_NDVI": str(s["ndvi"]),
         "INPUT_ALBEDO": str(s["albedo"]), "INPUT_DEM": str(s["dem"]), "METHOD": "gwr",
         "OUTPUT_SSM": str(d / "out" / "ssm"), "OUTPUT_FLAGS": str(d / "out" / "flags"),
         "OUTPUT_UNCERTAINTY": str(d / "out" / "unc"), "OUTPUT_COVERAGE": str(d / "out" / "coverage.csv")}
    p.update(kw)
    return p


def gf_params(s: dict, d: Path, **kw) -> dict:
    p = {"INPUT_LST": str(s["lst_clear"]), "INPUT_BACKGROUND": str(s["background"]), "METHOD": "anomaly",
         "WINDOW": 3, "OUTPUT_LST": str(d / "out" / "lst"), "OUTPUT_FLAGS": str(d / "out" / "flags")}
    p.update(kw)
    return p


def vs_params(s: dict, d: Path, **kw) -> dict:
    p = {"PRODUCT": str(s["product"]), "STATIONS": str(s["stations"]), "MIN_OBS": 3,
         "OUTPUT": str(d / "out" / "stations.gpkg"), "OUTPUT_TABLE": str(d / "out" / "metrics.csv"),
         "OUTPUT_HTML": str(d / "out" / "report.html")}
    p.update(kw)
    return p


def _in(d: Path, name: str) -> Path:
    return d / "in" / name


def _file(d: Path, name: str = "a_file.txt") -> Path:
    p = d / "out" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("not a folder")
    return p


def _folder(d: Path, name: str = "a_folder") -> Path:
    p = d / "out" / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def _symlink(target: Path, link: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    return link


def _hardlink(target: Path, link: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.link(target, link)
    return link


def _lst_file(s: dict) -> Path:
    return sorted(s["lst"].glob("*.tif"))[0]


def _truncated(s: dict, d: Path, index: int = 0, keep: float = 1 / 3, key: str = "ssm") -> Path:
    dst = _in(d, f"{key}_trunc")
    dst.mkdir(parents=True)
    for f in sorted(s[key].glob("*.tif")):
        (dst / f.name).write_bytes(f.read_bytes())
    victim = sorted(dst.glob("*.tif"))[index]
    data = victim.read_bytes()
    victim.write_bytes(data[: int(len(data) * keep)] if keep < 0.99 else data[:-8])
    return dst


def _dup_day(s: dict, d: Path) -> Path:
    dst = copy_series(s["ssm"], _in(d, "ssm_dup"))
    f = sorted(dst.glob("*.tif"))[0]
    (dst / f.name.replace("2019-07-01", "20190701")).write_bytes(f.read_bytes())
    return dst


def _far_ndvi(s: dict, d: Path) -> Path:
    from ssm_downscaling.core.grid import Grid, to_wkt
    from ssm_downscaling.core.series import write_raster

    g = Grid.from_bounds(to_wkt("EPSG:4326"), (10.0, 10.0, 11.0, 11.0), 0.01)
    return write_raster(_in(d, "far_ndvi.tif"), np.full(g.shape, 0.5, np.float32), g)


def _stations(s: dict, d: Path, func) -> Path:
    rows = [list(r) for r in s["station_rows"]]
    rows = func(rows)
    return write_stations(_in(d, "stations.csv"), rows)


def _ismn_percent(s: dict, d: Path) -> Path:
    folder = _in(d, "ismn")
    folder.mkdir(parents=True)
    for k, r in enumerate(s["station_rows"][:: len(DAYS)]):
        sid, lon, lat = r[0], float(r[1]), float(r[2])
        name = f"NET_NET_{sid}_sm_0.050000_0.050000_Probe_20190701_20190704.stm"
        lines = [f"NET NET {sid} {lat:.5f} {lon:.5f} 1500.0 0.05 0.05 Probe"]
        for i, day in enumerate(DAYS):
            lines.append(f"{day:%Y/%m/%d} 12:00 {25.0 + k + i:.2f} G M")
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


@dataclass
class Case:
    """One catalogue case: ``alg``, ``build(scene, case_dir) -> params``, the message pattern."""

    id: str
    alg: str
    build: Callable[[dict, Path], dict]
    match: str


CASES = [
    # ---- data loss: outputs over inputs (downscale) ------------------------------------
    Case("ds-coverage-is-dem", DS, lambda s, d: ds_params(s, d, OUTPUT_COVERAGE=str(s["dem"])),
         r"OUTPUT_COVERAGE|coverage table = .*dem\.tif: this is the dem input file"),
    Case("ds-coverage-is-lst-file", DS, lambda s, d: ds_params(s, d, OUTPUT_COVERAGE=str(_lst_file(s))),
         r"coverage table = .*lst_2019-07-01\.tif: this is the lst input file"),
    Case("ds-coverage-hardlink-to-dem", DS,
         lambda s, d: ds_params(s, d, INPUT_DEM=str(_hardlink(s["dem"], _in(d, "dem.tif"))),
                                OUTPUT_COVERAGE=str(_hardlink(s["dem"], d / "out" / "cov.csv"))),
         r"coverage table = .*cov\.csv: this is the dem input file"),
    Case("ds-coverage-in-input-series-as-tif", DS,
         lambda s, d: ds_params(s, d, OUTPUT_COVERAGE=str(s["albedo"] / "coverage_2019-07-09.tif")),
         r"would be written into the albedo input series"),
    Case("ds-coverage-is-folder", DS, lambda s, d: ds_params(s, d, OUTPUT_COVERAGE=str(_folder(d))),
         r"coverage table = .*a_folder: an existing folder, but a file is expected"),
    Case("ds-ssm-out-is-lst-in", DS, lambda s, d: ds_params(s, d, OUTPUT_SSM=str(s["lst"])),
         r"output folder is an input"),
    Case("ds-flags-out-is-ssm-in", DS, lambda s, d: ds_params(s, d, OUTPUT_FLAGS=str(s["ssm"])),
         r"output folder is an input"),
    Case("ds-unc-out-is-ndvi-in", DS, lambda s, d: ds_params(s, d, OUTPUT_UNCERTAINTY=str(s["ndvi"])),
         r"output folder is an input"),
    Case("ds-out-symlink-to-albedo", DS,
         lambda s, d: ds_params(s, d, OUTPUT_SSM=str(_symlink(s["albedo"], d / "out" / "link"))),
         r"output folder is an input"),
    Case("ds-out-is-existing-file", DS, lambda s, d: ds_params(s, d, OUTPUT_SSM=str(_file(d))),
         r"a_file\.txt: an existing file, but a folder is expected"),
    Case("ds-out-under-a-file", DS, lambda s, d: ds_params(s, d, OUTPUT_FLAGS=str(_file(d) / "sub")),
         r"cannot be written: .*a_file\.txt is a file, not a folder"),
    Case("ds-out-not-writable", DS, lambda s, d: ds_params(s, d, OUTPUT_SSM="/proc/ssm_catalogue_out"),
         r"/proc/ssm_catalogue_out: cannot be written: no file can be created in /proc"),
    Case("ds-coverage-not-writable", DS, lambda s, d: ds_params(s, d, OUTPUT_COVERAGE="/proc/cov/coverage.csv"),
         r"coverage\.csv: cannot be written"),
    Case("ds-ssm-and-flags-same", DS,
         lambda s, d: ds_params(s, d, OUTPUT_FLAGS=str(d / "out" / "ssm")), r"need different folders"),
    # ---- silently wrong results: units and fill ---------------------------------------------
    Case("ds-ssm-percent", DS, lambda s, d: ds_params(
        s, d, INPUT_SSM=str(copy_series(s["ssm"], _in(d, "ssm"), lambda a: a * 100))),
         r"ssm_coarse_2019-07-01\.tif \(2019-07-01\): the soil moisture is not in m3/m3 .*percent.*divide the "
         r"values by 100.*SSM_PERCENT"),
    Case("ds-ssm-percent-flag-on-m3m3", DS, lambda s, d: ds_params(s, d, SSM_PERCENT=True),
         r"declared in percent, but its values are at most .*already in m3/m3"),
    Case("ds-ssm-fill-9999-undeclared", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(copy_series(
        s["ssm"], _in(d, "ssm"), lambda a: np.where(np.arange(a.size).reshape(a.shape) % 3 == 0, -9999.0, a),
        nodata=None))), r"fill value that is not declared as nodata \(-9999 on .*gdal_edit\.py -a_nodata -9999"),
    Case("ds-ssm-fill-999-undeclared", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(copy_series(
        s["ssm"], _in(d, "ssm"), lambda a: np.where(np.arange(a.size).reshape(a.shape) % 3 == 0, -999.0, a),
        nodata=None))), r"not declared as nodata \(-999 on"),
    Case("ds-ssm-out-of-range", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(copy_series(
        s["ssm"], _in(d, "ssm"), lambda a: a * 1000))), r"values up to .* cannot be soil moisture in m3/m3"),
    Case("ds-lst-celsius", DS, lambda s, d: ds_params(
        s, d, INPUT_LST=str(copy_series(s["lst"], _in(d, "lst"), lambda a: a - 273.15))),
         r"lst_2019-07-01\.tif \(2019-07-01\): the land surface temperature is not in K .*Celsius.*273\.15"),
    Case("ds-lst-modis-counts", DS, lambda s, d: ds_params(
        s, d, INPUT_LST=str(copy_series(s["lst"], _in(d, "lst"), lambda a: a / 0.02))),
         r"MODIS counts.*multiply by 0\.02"),
    Case("ds-lst-fill-zero", DS, lambda s, d: ds_params(s, d, INPUT_LST=str(copy_series(
        s["lst"], _in(d, "lst"), lambda a: np.where(np.arange(a.size).reshape(a.shape) % 5 == 0, 0.0, a),
        nodata=None))), r"land surface temperature holds a fill value .*\(0 on"),
    Case("ds-lst-single-raster", DS, lambda s, d: ds_params(s, d, INPUT_LST=str(_lst_file(s))),
         r"is a single raster, but LST changes every day"),
    Case("ds-ndvi-modis-scale", DS, lambda s, d: ds_params(s, d, INPUT_NDVI=str(copy_series(
        s["ndvi"], _in(d, "ndvi"), lambda a: np.round(a * 10000).astype(np.int32)))),
         r"NDVI is not in unitless, -1\.\.1 .*MODIS integer scale.*0\.0001"),
    Case("ds-ndvi-scaled-twice", DS, lambda s, d: ds_params(s, d, INPUT_NDVI=str(copy_series(
        s["ndvi"], _in(d, "ndvi"), scale=0.0001))), r"scale factor of 0\.0001 but its values are already scaled"),
    Case("ds-ndvi-out-of-range", DS, lambda s, d: ds_params(s, d, INPUT_NDVI=str(copy_series(
        s["ndvi"], _in(d, "ndvi"), lambda a: a * 50000))), r"NDVI"),
    Case("ds-albedo-modis-scale", DS, lambda s, d: ds_params(s, d, INPUT_ALBEDO=str(copy_series(
        s["albedo"], _in(d, "albedo"), lambda a: np.round(a * 1000).astype(np.int32)))),
         r"albedo is not in .*MODIS integer scale.*0\.001"),
    Case("ds-albedo-percent", DS, lambda s, d: ds_params(s, d, INPUT_ALBEDO=str(copy_series(
        s["albedo"], _in(d, "albedo"), lambda a: a * 100))), r"albedo is not in .*0\.01 \(percent\)"),
    Case("ds-albedo-fill-32767", DS, lambda s, d: ds_params(s, d, INPUT_ALBEDO=str(copy_series(
        s["albedo"], _in(d, "albedo"), lambda a: np.where(np.arange(a.size).reshape(a.shape) % 7 == 0, 32767.0, a),
        nodata=None))), r"albedo holds a fill value .*32767"),
    Case("ds-dem-fill-32768", DS, lambda s, d: ds_params(s, d, INPUT_DEM=str(copy_series(
        s["dem"], _in(d, "dem.tif"), lambda a: np.where(np.arange(a.size).reshape(a.shape) % 11 == 0, -32768.0, a),
        nodata=None))), r"elevation holds a fill value .*-32768"),
    # ---- poor messages: parameters -----------------------------------------------------------
    Case("ds-bandwidth-abc", DS, lambda s, d: ds_params(s, d, BANDWIDTH_KM="abc"), r"BANDWIDTH_KM: 'abc' is not a number"),
    Case("ds-bandwidth-nan", DS, lambda s, d: ds_params(s, d, BANDWIDTH_KM="nan"), r"BANDWIDTH_KM: 'nan' is not a finite"),
    Case("ds-bandwidth-inf-float", DS, lambda s, d: ds_params(s, d, BANDWIDTH_KM=float("inf")),
         r"BANDWIDTH_KM: inf is not a finite"),
    Case("ds-gain-nan", DS, lambda s, d: ds_params(s, d, ANOMALY_GAIN=float("nan")), r"ANOMALY_GAIN: nan is not a finite"),
    Case("ds-pool-days-text", DS, lambda s, d: ds_params(s, d, POOL_DAYS="two"), r"POOL_DAYS: 'two' is not a number"),
    Case("ds-min-above-max", DS, lambda s, d: ds_params(s, d, MIN_SSM=0.5, MAX_SSM=0.3), r"MIN_SSM"),
    Case("ds-end-before-start", DS, lambda s, d: ds_params(s, d, START_DATE="2019-07-03", END_DATE="2019-07-02"),
         r"end date 2019-07-02 is before the start date"),
    Case("ds-no-day-in-range", DS, lambda s, d: ds_params(s, d, START_DATE="2020-01-01", END_DATE="2020-01-05"),
         r"no day between 2020-01-01"),
    Case("ds-ssm-missing", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(d / "nowhere")), r"does not exist"),
    Case("ds-ssm-empty-folder", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(_folder(d, "empty_in"))),
         r"no raster with a date in its name"),
    Case("ds-ssm-truncated", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(_truncated(s, d))),
         r"ssm_coarse_2019-07-01\.tif: .*(truncated or corrupt|cannot be (opened|read))"),
    Case("ds-ssm-truncated-last-day", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(_truncated(s, d, -1, 1.0))),
         r"ssm_coarse_2019-07-04\.tif: the file is truncated .*copy or download it again"),
    Case("ds-lst-truncated-last-day", DS, lambda s, d: ds_params(s, d, INPUT_LST=str(_truncated(s, d, -1, 0.6, "lst"))),
         r"lst_2019-07-04\.tif: the file is truncated"),
    Case("gf-lst-truncated-last-day", GF,
         lambda s, d: gf_params(s, d, INPUT_LST=str(_truncated(s, d, -1, 0.6, "lst_clear"))),
         r"lst_2019-07-04\.tif: the file is truncated"),
    Case("ds-ssm-two-files-one-day", DS, lambda s, d: ds_params(s, d, INPUT_SSM=str(_dup_day(s, d))),
         r"two files for 2019-07-01"),
    Case("ds-ndvi-elsewhere", DS, lambda s, d: ds_params(s, d, INPUT_NDVI=str(_far_ndvi(s, d))),
         r"far_ndvi\.tif: the NDVI does not cover the 1 km grid"),
    # ---- gap-fill LST ------------------------------------------------------------------------
    Case("gf-out-is-lst-in", GF, lambda s, d: gf_params(s, d, OUTPUT_LST=str(s["lst_clear"])),
         r"output folder is an input folder"),
    Case("gf-flags-out-is-background", GF, lambda s, d: gf_params(s, d, OUTPUT_FLAGS=str(s["background"])),
         r"output folder is an input folder"),
    Case("gf-out-is-existing-file", GF, lambda s, d: gf_params(s, d, OUTPUT_LST=str(_file(d))),
         r"an existing file, but a folder is expected"),
    Case("gf-out-not-writable", GF, lambda s, d: gf_params(s, d, OUTPUT_FLAGS="/proc/ssm_catalogue_flags"),
         r"cannot be written: no file can be created in /proc"),
    Case("gf-out-symlink-to-ndvi", GF, lambda s, d: gf_params(
        s, d, INPUT_NDVI=str(s["ndvi"]), OUTPUT_LST=str(_symlink(s["ndvi"], d / "out" / "l"))),
         r"output folder is an input folder"),
    Case("gf-lst-celsius", GF, lambda s, d: gf_params(s, d, INPUT_LST=str(copy_series(
        s["lst_clear"], _in(d, "lst"), lambda a: a - 273.15))), r"Celsius.*273\.15"),
    Case("gf-lst-fill-9999", GF, lambda s, d: gf_params(s, d, INPUT_LST=str(copy_series(
        s["lst_clear"], _in(d, "lst"), lambda a: np.where(np.isnan(a), -9999.0, a), nodata=None))),
         r"land surface temperature holds a fill value that is not declared as nodata \(-9999"),
    Case("gf-background-celsius", GF, lambda s, d: gf_params(s, d, INPUT_BACKGROUND=str(copy_series(
        s["background"], _in(d, "bg"), lambda a: a - 273.15))), r"bg_2019-07-01\.tif .*background LST .*Celsius"),
    Case("gf-ndvi-modis-scale", GF, lambda s, d: gf_params(s, d, INPUT_NDVI=str(copy_series(
        s["ndvi"], _in(d, "ndvi"), lambda a: np.round(a * 10000).astype(np.int32)))), r"MODIS integer scale"),
    Case("gf-dem-fill", GF, lambda s, d: gf_params(s, d, INPUT_DEM=str(copy_series(
        s["dem"], _in(d, "dem.tif"), lambda a: np.where(np.arange(a.size).reshape(a.shape) % 11 == 0, -32768.0, a),
        nodata=None))), r"elevation holds a fill value .*-32768"),
    Case("gf-no-background", GF, lambda s, d: gf_params(s, d, INPUT_BACKGROUND=""), r"needs an all-weather background"),
    Case("gf-window-text", GF, lambda s, d: gf_params(s, d, WINDOW="five"), r"WINDOW: 'five' is not a number"),
    Case("gf-min-above-max", GF, lambda s, d: gf_params(s, d, MIN_LST=330, MAX_LST=250), r"MIN_LST"),
    Case("gf-idw-nan", GF, lambda s, d: gf_params(s, d, IDW_POWER="nan"), r"IDW_POWER: 'nan' is not a finite"),
    # ---- validation --------------------------------------------------------------------------
    Case("vs-table-is-stations", VS, lambda s, d: vs_params(s, d, OUTPUT_TABLE=str(s["stations"])),
         r"OUTPUT_TABLE = .*stations\.csv: this is the stations input file"),
    Case("vs-html-is-stations", VS, lambda s, d: vs_params(s, d, OUTPUT_HTML=str(s["stations"])),
         r"OUTPUT_HTML = .*stations\.csv: this is the stations input file"),
    Case("vs-layer-is-stations", VS, lambda s, d: vs_params(s, d, OUTPUT=str(s["stations"])),
         r"OUTPUT = .*stations\.csv: this is the stations input file"),
    Case("vs-summary-json-is-input", VS, lambda s, d: vs_params(
        s, d, STATIONS=str(write_stations(_in(d, "report_summary.json"), s["station_rows"])),
        OUTPUT_HTML=str(_in(d, "report.html"))), r"report_summary\.json: this is the stations input file"),
    Case("vs-table-is-product-file", VS,
         lambda s, d: vs_params(s, d, OUTPUT_TABLE=str(sorted(s["product"].glob("*.tif"))[0])),
         r"this is the product 'product' input file|would be written into the product"),
    Case("vs-table-is-folder", VS, lambda s, d: vs_params(s, d, OUTPUT_TABLE=str(_folder(d))),
         r"an existing folder, but a file is expected"),
    Case("vs-html-not-writable", VS, lambda s, d: vs_params(s, d, OUTPUT_HTML="/proc/ssm_cat/report.html"),
         r"report\.html: cannot be written"),
    Case("vs-stations-percent", VS, lambda s, d: vs_params(s, d, STATIONS=str(_stations(
        s, d, lambda rows: [r[:4] + [f"{100 * float(r[4]):.2f}"] + r[5:] for r in rows]))),
         r"stations\.csv: the sm column looks like percent .*divide the values by 100"),
    Case("vs-stations-year-typo-everywhere", VS, lambda s, d: vs_params(s, d, STATIONS=str(_stations(
        s, d, lambda rows: [r[:3] + ["9" + r[3][1:]] + r[4:] for r in rows]))),
         r"the date '9019-07-01' is implausible .*a typo in the year"),
    Case("vs-ismn-percent", VS, lambda s, d: vs_params(s, d, STATIONS="", ISMN=str(_ismn_percent(s, d))),
         r"values look like percent, not m3/m3 \(divide them by 100\)"),
    Case("vs-stations-missing-column", VS, lambda s, d: vs_params(s, d, STATIONS=str(_strip_column(_stations(
        s, d, lambda rows: rows)))), r"lacks the column\(s\) sm"),
    Case("vs-stations-outside", VS, lambda s, d: vs_params(s, d, STATIONS=str(_stations(
        s, d, lambda rows: [[r[0], "10.0", "10.0"] + r[3:] for r in rows]))), r"Every station lies outside the rasters"),
    Case("vs-window-even", VS, lambda s, d: vs_params(s, d, WINDOW=2), r"WINDOW must be odd"),
    Case("vs-min-obs-too-high", VS, lambda s, d: vs_params(s, d, MIN_OBS=30), r"No station has at least min_obs=30"),
    Case("vs-both-station-inputs", VS, lambda s, d: vs_params(s, d, ISMN=str(_folder(d, "ismn"))),
         r"either as a CSV file"),
]


def _strip_column(p: Path) -> Path:
    lines = p.read_text().splitlines()
    p.write_text("\n".join(",".join(ln.split(",")[:4]) for ln in lines) + "\n")
    return p


def test_catalogue_is_large_enough():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, scene, tmp_path, alg_ready):
    from qgis.core import QgsProcessingException

    params = case.build(scene, tmp_path)
    inputs = [scene["root"], tmp_path / "in"]
    before = tree_hash(*inputs)
    out_before = files_under(tmp_path / "out")
    with pytest.raises(QgsProcessingException) as err:
        run_alg(case.alg, params)
    msg = str(err.value)
    assert re.search(case.match, msg, re.S), msg
    assert "Traceback" not in msg
    assert tree_hash(*inputs) == before, "an input was modified"
    assert files_under(tmp_path / "out") == out_before, "something was written"
    hidden = [p for p in files_under(scene["root"]) if "/." in p]
    assert not hidden, f"temporary files left: {hidden}"


# ---------------------------------------------------------------------------------------
# honest messages on runs that go on, and errors that are not the user's
# ---------------------------------------------------------------------------------------


def _feedback():
    from qgis.core import QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.text: list[str] = []

        def pushInfo(self, info):
            self.text.append(info)

        def pushWarning(self, warning):
            self.text.append(warning)

    return Feedback()


def test_even_window_is_stated_and_run_as_said(scene, tmp_path, alg_ready):
    fb = _feedback()
    res = run_alg(GF, gf_params(scene, tmp_path, WINDOW=4, METHOD="temporal", INPUT_BACKGROUND=""), feedback=fb)
    text = "\n".join(fb.text)
    assert "window of 4 days is even" in text and "5 days (2 on each side) are used" in text
    assert "window 5 day(s)" in text
    assert res["DAYS"] == len(DAYS)


def test_percent_converted_when_asked(scene, tmp_path, alg_ready):
    pct = copy_series(scene["ssm"], tmp_path / "in" / "ssm", lambda a: a * 100)
    before = tree_hash(scene["root"], tmp_path / "in")
    res = run_alg(DS, ds_params(scene, tmp_path, INPUT_SSM=str(pct), SSM_PERCENT=True, METHOD="bilinear"))
    assert res["DAYS"] == len(DAYS)
    from ssm_downscaling.core.series import read_raster

    v = read_raster(sorted(Path(res["OUTPUT_SSM"]).glob("ssm_*.tif"))[0])
    assert 0.0 < np.nanmax(v) <= 1.0
    assert tree_hash(scene["root"], tmp_path / "in") == before


def test_unexpected_error_is_short_and_logged(scene, tmp_path, alg_ready, monkeypatch):
    from qgis.core import QgsProcessingException

    import ssm_downscaling.core.downscale as core_ds

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(core_ds, "downscale_series", boom)
    with pytest.raises(QgsProcessingException) as err:
        run_alg(DS, ds_params(scene, tmp_path))
    msg = str(err.value)
    assert "Unexpected error in Downscale soil moisture: ZeroDivisionError: division by zero" in msg
    assert "the details are in the log" in msg and "Traceback" not in msg


def test_os_error_names_the_file(scene, tmp_path, alg_ready, monkeypatch):
    from qgis.core import QgsProcessingException

    import ssm_downscaling.core.downscale as core_ds

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "ssm" / "ssm_2019-07-01.tif"))

    monkeypatch.setattr(core_ds, "downscale_series", full)
    with pytest.raises(QgsProcessingException, match=r"ssm_2019-07-01\.tif: No space left on device; check that"):
        run_alg(DS, ds_params(scene, tmp_path))


def test_station_counts_of_clear_and_cloudy_averages(scene, tmp_path, alg_ready):
    from ssm_downscaling.core.series import write_day

    flags = tmp_path / "in" / "flags"
    for i, d in enumerate(DAYS):  # LST flags: one cloudy day only, so no station has 3 cloudy days
        write_day(flags, "lst_flags", d, np.full(scene["fine"].shape, 1 if i == 0 else 0, np.uint8), scene["fine"],
                  dtype=np.uint8)
    fb = _feedback()
    res = run_alg(VS, vs_params(scene, tmp_path, FLAGS=str(flags), FLAG_TYPE="lst"), feedback=fb)
    text = "\n".join(fb.text)
    assert "the cloudy station average uses 0 of the 5 validated station(s)" in text
    html = Path(res["OUTPUT_HTML"]).read_text()
    assert "0 of 5" in html
    import json

    doc = json.loads(Path(res["OUTPUT_SUMMARY"]).read_text())
    cloudy = [r for r in doc["averages"] if r["subset"] == "cloudy" and r["statistic"] == "mean"]
    assert cloudy and cloudy[0]["n_stations"] == 0
    assert any("cloudy station average uses 0 of the 5" in w for w in doc["warnings"])
