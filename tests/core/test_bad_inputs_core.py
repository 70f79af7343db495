"""The bad-input catalogue through the core API (issue 9), plus the honest-warning cases:
door checks of argument types and values, output guards, unit and fill checks, station
tables. Every failing case asserts the message, that nothing was written and that no input
changed."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
from badinput_scene import DAYS, build_scene, copy_series, files_under, tree_hash, write_stations

from ssm_downscaling.core.checks import VARIABLES, Sample, check_sample, undeclared_fill
from ssm_downscaling.core.downscale import downscale_series
from ssm_downscaling.core.downscale.methods import make_downscaler
from ssm_downscaling.core.errors import SsmError
from ssm_downscaling.core.lst import gapfill_series
from ssm_downscaling.core.outputs import Output, guard_outputs, remove_stale_aux, same_path, survey_series_folder
from ssm_downscaling.core.series import read_raster
from ssm_downscaling.core.validation.stations import read_ismn, read_station_csv
from ssm_downscaling.core.validation.validate import validate_stations, write_metrics_csv


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    return build_scene(tmp_path_factory.mktemp("corescene"))


def ds(s: dict, d: Path, **kw):
    args = {"ssm_dir": s["ssm"], "lst_dir": s["lst"], "ndvi": s["ndvi"], "albedo": s["albedo"],
            "out_ssm": d / "out" / "ssm", "out_flags": d / "out" / "flags", "dem": s["dem"],
            "coverage_csv": d / "out" / "coverage.csv"}
    args.update(kw)
    return downscale_series(**args)


def gf(s: dict, d: Path, **kw):
    args = {"lst_dir": s["lst_clear"], "background_dir": s["background"], "out_lst_dir": d / "out" / "lst",
            "out_flag_dir": d / "out" / "flags", "window": 3}
    args.update(kw)
    return gapfill_series(**args)


def vs(s: dict, d: Path, **kw):
    args = {"products": {"p": s["product"]}, "stations": s["stations"], "min_obs": 3}
    args.update(kw)
    return validate_stations(**args)


# case id -> (call(scene, case_dir), message pattern)
CORE_CASES = {
    "ds-start-int": (lambda s, d: ds(s, d, start=20190701), r"start must be a datetime\.date or an ISO date string"),
    "ds-start-bad-iso": (lambda s, d: ds(s, d, start="2019-13-01"), r"start='2019-13-01' is not a date"),
    "ds-end-before-start": (lambda s, d: ds(s, d, start="2019-07-03", end=dt.date(2019, 7, 1)),
                            r"end date 2019-07-01 is before the start date 2019-07-03"),
    "ds-path-int": (lambda s, d: ds(s, d, ssm_dir=123), r"ssm_dir must be a path \(str or pathlib\.Path\), got int"),
    "ds-path-list": (lambda s, d: ds(s, d, ndvi=[s["ndvi"]]), r"ndvi must be a path"),
    "ds-kernel": (lambda s, d: ds(s, d, kernel="triangle"), r"kernel='triangle' is not one of gaussian, bisquare"),
    "ds-method": (lambda s, d: ds(s, d, method="kriging"), r"method='kriging' is not one of"),
    "ds-residual": (lambda s, d: ds(s, d, residual="exact"), r"residual='exact' is not one of"),
    "ds-bandwidth-nan": (lambda s, d: ds(s, d, bandwidth_km=float("nan")), r"bandwidth_km must be a finite number, got nan \(km; 0 or None"),
    "ds-bandwidth-text": (lambda s, d: ds(s, d, bandwidth_km="50"), r"bandwidth_km must be a number, got str"),
    "ds-bandwidth-negative": (lambda s, d: ds(s, d, bandwidth_km=-5), r"bandwidth_km=-5 is outside its range 0\.0\.\. \(km"),
    "ds-pool-negative": (lambda s, d: ds(s, d, pool_days=-1), r"pool_days=-1 is outside its range"),
    "ds-pool-float": (lambda s, d: ds(s, d, pool_days=1.5), r"pool_days must be a whole number"),
    "ds-gain": (lambda s, d: ds(s, d, anomaly_gain=5.0), r"anomaly_gain=5\.0 is outside its range 0\.0\.\.2\.0 \(or 'auto'\)"),
    "ds-ssm-range": (lambda s, d: ds(s, d, ssm_range=(0.6, 0.1)), r"ssm_range must have min < max"),
    "ds-ssm-range-shape": (lambda s, d: ds(s, d, ssm_range=0.5), r"ssm_range must be \(min, max\)"),
    "ds-lst-single-file": (lambda s, d: ds(s, d, lst_dir=sorted(s["lst"].glob("*.tif"))[0]),
                           r"is a single raster, but LST changes every day"),
    "ds-coverage-is-dem": (lambda s, d: ds(s, d, coverage_csv=s["dem"]), r"coverage table = .*dem\.tif: this is the dem"),
    "ds-coverage-is-ssm-file": (lambda s, d: ds(s, d, coverage_csv=sorted(s["ssm"].glob("*.tif"))[1]),
                                r"this is the coarse soil moisture input file"),
    "ds-out-is-reference": (lambda s, d: ds(s, d, reference=s["dem"], coverage_csv=s["dem"]), r"this is the"),
    "ds-ssm-percent": (lambda s, d: ds(s, d, ssm_dir=copy_series(s["ssm"], d / "in" / "ssm", lambda a: a * 100)),
                       r"looks like percent.*ssm_percent=True"),
    "ds-ssm-fill": (lambda s, d: ds(s, d, ssm_dir=copy_series(
        s["ssm"], d / "in" / "ssm", lambda a: np.where(np.arange(a.size).reshape(a.shape) % 3 == 0, -9999.0, a),
        nodata=None)), r"not declared as nodata \(-9999"),
    "ds-ndvi-modis": (lambda s, d: ds(s, d, ndvi=copy_series(s["ndvi"], d / "in" / "ndvi",
                                                             lambda a: np.round(a * 1e4).astype(np.int32))),
                      r"MODIS integer scale"),
    "gf-start-type": (lambda s, d: gf(s, d, start=1.5), r"start must be a datetime\.date"),
    "gf-window-text": (lambda s, d: gf(s, d, window="15"), r"window must be a number"),
    "gf-path-type": (lambda s, d: gf(s, d, lst_dir=None), r"lst_dir: a file or folder path is required"),
    "gf-out-is-lst": (lambda s, d: gf(s, d, out_flag_dir=s["lst_clear"]), r"output folder is an input folder"),
    "gf-out-is-dem-file": (lambda s, d: gf(s, d, dem=s["dem"], out_lst_dir=s["dem"]),
                           r"this is the DEM input file|an existing file, but a folder is expected"),
    "gf-celsius": (lambda s, d: gf(s, d, lst_dir=copy_series(s["lst_clear"], d / "in" / "lst", lambda a: a - 273.15)),
                   r"Celsius"),
    "vs-single-path": (lambda s, d: validate_stations(str(s["product"]), s["stations"]),
                       r"products expects a list of folders or a mapping name -> folder, got the single path"),
    "vs-single-pathlib": (lambda s, d: validate_stations(s["product"], s["stations"]),
                          r"got the single path"),
    "vs-stations-int": (lambda s, d: vs(s, d, stations=5), r"stations must be a path"),
    "vs-window-even": (lambda s, d: vs(s, d, window=4), r"window must be odd"),
    "vs-start-type": (lambda s, d: vs(s, d, start=[2019, 7, 1]), r"start must be a datetime\.date"),
    "vs-min-obs": (lambda s, d: vs(s, d, min_obs=2), r"min_obs=2 is outside its range"),
    "predictors-string": (lambda s, d: make_downscaler("gwr", "lst"),
                          r"predictors expects a sequence of names .* got the string 'lst'"),
    "predictors-numbers": (lambda s, d: make_downscaler("gwr", [1, 2]), r"predictors expects names"),
}


@pytest.mark.parametrize("case", list(CORE_CASES), ids=list(CORE_CASES))
def test_core_bad_input(case, scene, tmp_path):
    call, pattern = CORE_CASES[case]
    before = tree_hash(scene["root"])
    with pytest.raises(SsmError) as err:
        call(scene, tmp_path)
    assert re.search(pattern, str(err.value), re.S), str(err.value)
    assert tree_hash(scene["root"]) == before
    assert files_under(tmp_path / "out") == set()


def test_dates_as_iso_strings_work(scene, tmp_path):
    summary = ds(scene, tmp_path, start="2019-07-02", end="2019-07-03", method="bilinear")
    assert summary.days == DAYS[1:3]


def test_percent_converted_on_request(scene, tmp_path):
    pct = copy_series(scene["ssm"], tmp_path / "in" / "ssm", lambda a: a * 100)
    a = ds(scene, tmp_path / "a", method="bilinear")
    b = ds(scene, tmp_path / "b", method="bilinear", ssm_dir=pct, ssm_percent=True)
    for fa, fb in zip(a.files["ssm"], b.files["ssm"]):
        np.testing.assert_allclose(read_raster(fa), read_raster(fb), atol=1e-6)


def test_metrics_csv_never_over_the_stations(scene, tmp_path):
    res = vs(scene, tmp_path)
    before = tree_hash(scene["root"])
    with pytest.raises(SsmError, match="metrics table = .*stations.csv: this is the stations input file"):
        write_metrics_csv(res, scene["stations"])
    from ssm_downscaling.core.validation.report import write_report

    with pytest.raises(SsmError, match="this is the product 'p' input folder"):
        write_report(res, scene["product"])
    assert tree_hash(scene["root"]) == before


# ---------------------------------------------------------------------------------------
# the checks and guards as functions
# ---------------------------------------------------------------------------------------


def _sample(values, scale=1.0) -> Sample:
    return Sample(Path("x.tif"), dt.date(2019, 7, 1), np.asarray(values, dtype=np.float64), scale, 0.0, None, "Float32")


@pytest.mark.parametrize(("kind", "values", "scale", "pattern"), [
    ("ssm", np.r_[np.linspace(5, 45, 200)], 1.0, "percent"),
    ("ssm", np.r_[np.linspace(0.05, 0.45, 200), [-9999.0] * 20], 1.0, r"\(-9999 on 20 of 220"),
    ("ssm", np.r_[np.linspace(0.05, 0.45, 200), [65535.0] * 3], 1.0, r"65535"),
    ("lst", np.r_[np.linspace(280, 310, 200), [0.0] * 30], 1.0, r"\(0 on 30"),
    ("lst", np.linspace(-5, 35, 200), 1.0, "Celsius"),
    ("lst", np.linspace(14000, 15500, 200), 1.0, "MODIS counts"),
    ("ndvi", np.linspace(-1000, 9000, 200), 1.0, "MODIS integer scale"),
    ("ndvi", np.linspace(0.00001, 0.00008, 200), 0.0001, "scaled twice"),
    ("albedo", np.linspace(100, 300, 200), 1.0, "MODIS integer scale"),
    ("albedo", np.linspace(0.0001, 0.0003, 200), 0.001, "scaled twice"),
    ("dem", np.r_[np.linspace(100, 3000, 200), [-32768.0] * 10], 1.0, "-32768"),
])
def test_check_sample_refuses(kind, values, scale, pattern):
    with pytest.raises(SsmError, match=pattern):
        check_sample(_sample(values, scale), VARIABLES[kind])


@pytest.mark.parametrize(("kind", "values"), [
    ("ssm", np.linspace(0.0, 0.6, 300)), ("lst", np.linspace(250, 330, 300)), ("ndvi", np.linspace(-0.2, 0.9, 300)),
    ("albedo", np.linspace(0.05, 0.5, 300)), ("dem", np.linspace(-100, 8800, 300)),
    ("ssm", np.r_[np.linspace(0.05, 0.45, 300), [0.0] * 50]),  # 0 is plausible soil moisture, not a fill
    ("dem", np.linspace(-4000, 3000, 300)),  # bathymetry in a coastal DEM
])
def test_check_sample_accepts_plausible(kind, values):
    assert check_sample(_sample(values), VARIABLES[kind]).size == values.size
    if kind != "dem":
        assert undeclared_fill(values, VARIABLES[kind]) == []


def test_same_path_by_inode_and_symlink(tmp_path):
    a = tmp_path / "a.tif"
    a.write_text("x")
    os.link(a, tmp_path / "b.tif")
    os.symlink(a, tmp_path / "c.tif")
    assert same_path(a, tmp_path / "b.tif") and same_path(a, tmp_path / "c.tif")
    assert same_path(tmp_path / "sub" / ".." / "a.tif", a)
    assert not same_path(a, tmp_path / "d.tif")


def test_guard_distinct_outputs_and_prefixes(tmp_path):
    with pytest.raises(SsmError, match="would overwrite each other"):
        guard_outputs({}, [Output("A", tmp_path / "x.csv"), Output("B", tmp_path / "x.csv")])
    guard_outputs({}, [Output("lst", tmp_path, folder=True, prefix="lst"),
                       Output("flags", tmp_path, folder=True, prefix="lst_flag")])


def test_pixels_outside_the_coarse_grid_get_no_estimate(tmp_path):
    """The coarse product covers only the western half: the eastern pixels are not
    extrapolated, flagged 1 and counted as covered (issue 9)."""
    scene = build_scene(tmp_path / "scene")
    from osgeo import gdal

    half = tmp_path / "in" / "ssm_half"
    half.mkdir(parents=True)
    for f in sorted(scene["ssm"].glob("*.tif")):
        ds0 = gdal.Open(str(f))
        gdal.Translate(str(half / f.name), ds0, srcWin=[0, 0, max(1, ds0.RasterXSize // 2), ds0.RasterYSize])
    s = ds(scene, tmp_path, ssm_dir=half, method="bilinear")
    flags = read_raster(s.files["flags"][0])
    ssm = read_raster(s.files["ssm"][0])
    from ssm_downscaling.core.downscale.run import build_membership
    from ssm_downscaling.core.grid import Grid

    m = build_membership(s.fine, Grid.from_raster(sorted(half.glob("*.tif"))[0]))
    outside = m.index < 0
    assert outside.any()
    assert np.isnan(ssm[outside]).all()
    assert np.isnan(flags[outside]).all()  # 255 = nodata of the flag rasters
    assert s.coverage[0]["estimated_pct"] < 100.0


# ---------------------------------------------------------------------------------------
# honest warnings: the run goes on, the log says what happened
# ---------------------------------------------------------------------------------------


def test_rerun_into_another_runs_folder_warns_and_lists(scene, tmp_path, caplog):
    ds(scene, tmp_path, method="bilinear", start=DAYS[0], end=DAYS[1])
    f = tmp_path / "out" / "ssm" / f"ssm_{DAYS[1].isoformat()}.tif"
    aux = Path(str(f) + ".aux.xml")
    aux.write_text("<PAMDataset/>")
    with caplog.at_level(logging.INFO, logger="ssm_downscaling"):
        ds(scene, tmp_path, method="dispatch", start=DAYS[1], end=DAYS[3])
    text = caplog.text
    assert "already holds 1 file(s) of other days" in text and f"ssm_{DAYS[0].isoformat()}.tif" in text
    assert "written by another method (bilinear); they are replaced by dispatch" in text
    assert not aux.exists(), "the stale .aux.xml statistics were kept"
    sv = survey_series_folder(tmp_path / "out" / "ssm", "ssm", DAYS[1:], "dispatch")
    assert [p.name for p in sv.other_days] == [f"ssm_{DAYS[0].isoformat()}.tif"] and not sv.other_method


def test_remove_stale_aux(tmp_path):
    (tmp_path / "a.tif.aux.xml").write_text("x")
    assert remove_stale_aux([tmp_path / "a.tif", tmp_path / "b.tif"]) == 1


def test_even_gapfill_window_is_stated(caplog):
    from ssm_downscaling.core.lst.options import GapfillOptions

    with caplog.at_level(logging.WARNING, logger="ssm_downscaling"):
        opt = GapfillOptions(window=4)
    assert opt.window == 5 and opt.half_window == 2
    assert "window of 4 days is even" in caplog.text and "5 days (2 on each side) are used" in caplog.text


def test_conflicting_duplicates_warn_with_count_ids_and_rule(scene, tmp_path, caplog):
    rows = [list(r) for r in scene["station_rows"]]
    dup = [r[:] for r in rows if r[0] in ("S1", "S3") and r[3] == DAYS[0].isoformat()]
    for r in dup:
        r[4] = "0.9000"
    same = [r[:] for r in rows if r[0] == "S2" and r[3] == DAYS[0].isoformat()]  # exact duplicate: no conflict
    p = write_stations(tmp_path / "st.csv", rows + dup + same)
    with caplog.at_level(logging.WARNING, logger="ssm_downscaling"):
        st = read_station_csv(p)
    msg = " ".join(st.problems)
    assert "2 duplicate row(s) give another soil moisture" in msg and "stations S1, S3" in msg
    assert "rule: the first row of each station and date/time is used" in msg
    i = st.ids.index("S1")
    assert st.values[i, 0] == pytest.approx(float(next(r[4] for r in rows if r[0] == "S1")))


def test_year_typo_is_named_not_out_of_memory(scene, tmp_path):
    rows = [list(r) for r in scene["station_rows"]]
    rows[0][3] = "9019-07-01"
    st = read_station_csv(write_stations(tmp_path / "st.csv", rows))
    assert st.values.shape[1] == len(DAYS)
    assert any("the date '9019-07-01' is implausible" in m for m in st.problems)


def test_ismn_percent_file_named(scene, tmp_path):
    folder = tmp_path / "ismn"
    folder.mkdir()
    name = "NET_NET_S0_sm_0.050000_0.050000_Probe_20190701_20190704.stm"
    lines = ["NET NET S0 35.0 105.0 1500.0 0.05 0.05 Probe"]
    lines += [f"{d:%Y/%m/%d} 12:00 {20.0 + i:.2f} G M" for i, d in enumerate(DAYS)]
    (folder / name).write_text("\n".join(lines) + "\n")
    with pytest.raises(SsmError, match=r"values look like percent.*S0 \(NET_NET_S0.*median 21\.5"):
        read_ismn(folder)


def test_validation_says_why_and_counts_stations(scene, tmp_path):
    rows = [list(r) for r in scene["station_rows"]]
    product = copy_series(scene["product"], tmp_path / "in" / "product",
                          lambda a: np.where(np.arange(a.size).reshape(a.shape) < 72 * 3, np.nan, a))
    # a station in the product's nodata rows: top-left of the grid
    from badinput_scene import LAEA
    from osgeo import osr

    src = osr.SpatialReference()
    src.ImportFromProj4(LAEA)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat, _ = osr.CoordinateTransformation(src, dst).TransformPoint(-30e3, 35e3)
    rows += [["NODATA", f"{lon:.6f}", f"{lat:.6f}", d.isoformat(), "0.2", "0.05", "NET"] for d in DAYS]
    res = validate_stations({"p": product}, write_stations(tmp_path / "st.csv", rows), min_obs=3)
    text = " ".join(res.warnings)
    assert "NODATA (0: 'p' has no value at its pixel on any day" in text


def test_all_nan_lst_day_is_named_as_such(scene, tmp_path):
    lst = copy_series(scene["lst"], tmp_path / "in" / "lst")
    from ssm_downscaling.core.series import write_day

    write_day(lst, "lst", DAYS[2], np.full(scene["fine"].shape, np.nan, np.float32), scene["fine"])
    s = ds(scene, tmp_path, lst_dir=lst, method="gwr")
    assert DAYS[2] in s.skipped and "an input is all nodata" in s.skipped[DAYS[2]]
    assert "coarse soil moisture" not in s.skipped[DAYS[2]]


def test_modis_hdf4_scale_convention_named():
    """MOD13 declares scale_factor = 10000 meaning value = stored / 10000; GDAL multiplies."""
    values = np.linspace(-0.1, 0.9, 200) * 1e4 * 1e4
    with pytest.raises(SsmError, match=r"scale factor of 10000 in the MODIS HDF4 way .*-a_scale 0\.0001"):
        check_sample(_sample(values, 1e4), VARIABLES["ndvi"])


def test_scatter_n_equals_table_n(scene, tmp_path):
    """The report's scatter counts the pairs of the stations in the averages, like the table."""
    rows = [list(r) for r in scene["station_rows"]] + [["FEW", scene["station_rows"][0][1],
                                                        scene["station_rows"][0][2], DAYS[0].isoformat(), "0.2",
                                                        "0.05", "NET"]]
    res = validate_stations({"p": scene["product"]}, write_stations(tmp_path / "st.csv", rows), min_obs=3)
    comp = res.comparison
    m = comp.masks["p"] & comp.validated("p")[:, None]
    assert int(m.sum()) == comp.average("p")["n_obs"] == 20
    assert int(comp.masks["p"].sum()) == 21  # the station below min_obs is not in the scatter's n
