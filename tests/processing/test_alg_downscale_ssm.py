"""ssm:downscalessm through processing.run (pytest-qgis) and qgis_process."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import json
from pathlib import Path

import numpy as np
import pytest
from ssm_testing import run_qgis_process

from ssm_downscaling.core.grid import Grid, ease2_global, to_wkt
from ssm_downscaling.core.membership import Membership
from ssm_downscaling.core.series import read_raster, write_day, write_raster

DAYS = [dt.date(2019, 7, 1) + dt.timedelta(days=i) for i in range(4)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """Coarse SSM on an EASE-Grid 2.0 window (a seam on day 3), daily LST and albedo, NDVI
    composites, DEM and LST flags on a 1 km LAEA grid (90 x 80 km)."""
    root = tmp_path_factory.mktemp("dsalg")
    fine = Grid.from_bounds(to_wkt("+proj=laea +lat_0=35 +lon_0=105 +datum=WGS84 +units=m +no_defs"),
                            (-45e3, -40e3, 45e3, 40e3), 1000)
    coarse = ease2_global(36).covering(fine, margin=0)
    m = Membership.build(fine, coarse)
    yy, xx = np.mgrid[0 : fine.height, 0 : fine.width].astype(float)
    dem = (1500 + 200 * np.sin(xx / 9) * np.cos(yy / 13)).astype(np.float32)
    ndvi = (0.4 + 0.2 * np.sin(yy / 17)).astype(np.float32)
    dem[30:34, 40:46] = np.nan  # a lake: no data in every land product
    ndvi[30:34, 40:46] = np.nan
    albedo = np.full(fine.shape, 0.2, np.float32)
    albedo[30:34, 40:46] = np.nan
    for i, d in enumerate(DAYS):
        lst = (300 + 4 * np.cos(xx / 7 + i) - 0.0065 * (dem - 1500)).astype(np.float32)
        lst[np.isnan(dem)] = np.nan
        truth = 0.3 - 0.012 * (lst - 300) + 0.05 * np.nan_to_num(ndvi)
        y, _ = m.aggregate(truth.astype(np.float32))
        if i == 2:
            y[0, :] = np.nan
        write_day(root / "ssm", "ssm_coarse", d, y, coarse)
        write_day(root / "lst", "lst", d, lst, fine)
        write_day(root / "albedo", "albedo", d, albedo + np.float32(0.01 * i), fine)
        write_day(root / "lstflags", "lst_flags", d, (xx < 20).astype(np.uint8), fine)
    write_day(root / "ndvi", "ndvi", DAYS[0] - dt.timedelta(days=3), ndvi, fine)
    write_raster(root / "dem.tif", dem, fine)
    return {"root": root, "fine": fine, "m": m, "ssm": root / "ssm", "lst": root / "lst", "ndvi": root / "ndvi",
            "albedo": root / "albedo", "dem": root / "dem.tif", "flags": root / "lstflags"}


def _run(params: dict, feedback=None) -> dict:
    """processing.run with its own context, whose layers are released before returning
    (layers left to a late garbage collection, after QGIS has shut down, can crash)."""
    from qgis import processing
    from qgis.core import QgsProcessingContext

    context = QgsProcessingContext()
    try:
        res = processing.run("ssm:downscalessm", params, feedback=feedback, context=context)
        res["_n_layers_to_load"] = len(context.layersToLoadOnCompletion())
        return res
    finally:
        context.setLayersToLoadOnCompletion({})
        context.temporaryLayerStore().removeAllMapLayers()
        del context
        gc.collect()


def _params(data, out: Path, **kw) -> dict:
    p = {
        "INPUT_SSM": str(data["ssm"]),
        "INPUT_LST": str(data["lst"]),
        "INPUT_NDVI": str(data["ndvi"]),
        "INPUT_ALBEDO": str(data["albedo"]),
        "INPUT_DEM": str(data["dem"]),
        "INPUT_LST_FLAGS": str(data["flags"]),
        "OUTPUT_SSM": str(out / "ssm"),
        "OUTPUT_FLAGS": str(out / "flags"),
        "OUTPUT_UNCERTAINTY": str(out / "unc"),
        "OUTPUT_COVERAGE": str(out / "coverage.csv"),
    }
    p.update(kw)
    return p


def test_processing_run_writes_ssm_flags_uncertainty_and_coverage(alg_ready, data, tmp_path):
    from qgis.core import QgsProcessingFeedback

    progress = []

    class Feedback(QgsProcessingFeedback):
        def setProgress(self, p):
            progress.append(p)
            super().setProgress(p)

    # the exact-mean correction, chosen by its key (the default filter is tested in core)
    res = _run(_params(data, tmp_path, START_DATE="2019-07-02", POOL_DAYS=1, RESIDUAL="coherent"), Feedback())
    assert res["DAYS"] == 3 and res["SKIPPED_DAYS"] == 0 and res["MEAN_COVERAGE"] == pytest.approx(100.0)
    assert sorted(p.name for p in Path(res["OUTPUT_SSM"]).glob("*.tif")) == [f"ssm_{d}.tif" for d in DAYS[1:]]
    m = data["m"]
    for d in DAYS[1:]:
        ssm = read_raster(Path(res["OUTPUT_SSM"]) / f"ssm_{d}.tif")
        coarse = read_raster(data["ssm"] / f"ssm_coarse_{d}.tif")
        mean, count = m.aggregate(ssm)
        ok = np.isfinite(coarse) & (count > 0)
        np.testing.assert_allclose(mean[ok], coarse[ok], atol=1e-6)
        assert np.isnan(ssm[30:34, 40:46]).all()
    flags = read_raster(Path(res["OUTPUT_FLAGS"]) / f"ssm_flags_{DAYS[2]}.tif")
    seam_px = np.isin(m.index, np.arange(m.coarse.width))
    assert set(np.unique(flags[seam_px & ~np.isnan(flags)])) <= {1, 3}
    assert set(np.unique(flags[~np.isnan(flags)])) == {0, 1, 2, 3}
    assert np.isnan(flags[30:34, 40:46]).all()  # 255 = no estimate, read back as NaN
    unc = read_raster(Path(res["OUTPUT_UNCERTAINTY"]) / f"ssm_uncertainty_{DAYS[1]}.tif")
    assert np.nanmin(unc) > 0
    rows = list(csv.DictReader(open(res["OUTPUT_COVERAGE"])))
    assert [r["date"] for r in rows] == [d.isoformat() for d in DAYS[1:]]
    assert float(rows[1]["seam_filled_pct"]) > 0 and float(rows[0]["estimated_pct"]) == 100.0
    assert progress and max(progress) == pytest.approx(100.0)
    assert res["_n_layers_to_load"] == 3 * 3  # every day of SSM, uncertainty and flags (temporal layers)


def test_other_methods_run(alg_ready, data, tmp_path):
    for method in ("forest", "dispatch", "bilinear"):
        res = _run(_params(data, tmp_path / method, METHOD=method, END_DATE="2019-07-01", TREES=10))
        assert res["DAYS"] == 1
        ssm = read_raster(Path(res["OUTPUT_SSM"]) / f"ssm_{DAYS[0]}.tif")
        assert np.nanmin(ssm) >= np.float32(0.01) and np.nanmax(ssm) <= np.float32(0.6)


def test_bad_inputs_give_clear_errors_and_write_nothing(alg_ready, data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingException

    out = tmp_path / "o1"
    write_day(tmp_path / "ndvi_2018", "ndvi", dt.date(2018, 7, 1), np.full(data["fine"].shape, 0.4, np.float32),
              data["fine"])
    with pytest.raises(QgsProcessingException, match="No common dates.*NDVI 2018-07-01"):
        processing.run("ssm:downscalessm", _params(data, out, INPUT_NDVI=str(tmp_path / "ndvi_2018")))
    with pytest.raises(QgsProcessingException, match="end date 2019-07-02 is before the start date"):
        processing.run("ssm:downscalessm", _params(data, out, START_DATE="2019-07-03", END_DATE="2019-07-02"))
    with pytest.raises(QgsProcessingException, match="no day between 2020-01-01"):
        processing.run("ssm:downscalessm", _params(data, out, START_DATE="2020-01-01"))
    far_grid = Grid(data["fine"].crs_wkt, (4e6, 1000.0, 0.0, 4e6, 0.0, -1000.0), 30, 30)
    write_raster(tmp_path / "far.tif", np.zeros(far_grid.shape, np.float32), far_grid)
    with pytest.raises(QgsProcessingException, match="far.tif: the albedo does not cover the 1 km grid"):
        processing.run("ssm:downscalessm", _params(data, out, INPUT_ALBEDO=str(tmp_path / "far.tif")))
    with pytest.raises(QgsProcessingException, match="MIN_SSM"):
        processing.run("ssm:downscalessm", _params(data, out, MIN_SSM=0.5, MAX_SSM=0.4))
    with pytest.raises(QgsProcessingException, match="output folder is an input"):
        processing.run("ssm:downscalessm", _params(data, out, OUTPUT_SSM=str(data["lst"])))
    assert not out.exists() or not any(out.rglob("*.tif"))


def test_cancel_leaves_no_partial_files(alg_ready, data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    fb = QgsProcessingFeedback()
    fb.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("ssm:downscalessm", _params(data, tmp_path), feedback=fb)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_help_and_parameters_are_modeler_friendly(alg_ready):
    alg = alg_ready.algorithmById("ssm:downscalessm")
    assert alg.displayName() == "Downscale soil moisture" and "AICc" in alg.shortHelpString()
    params = {p.name(): p for p in alg.parameterDefinitions()}
    for n in ("INPUT_SSM", "INPUT_LST", "INPUT_NDVI", "INPUT_ALBEDO", "INPUT_DEM", "INPUT_LST_FLAGS", "REFERENCE",
              "START_DATE", "END_DATE", "METHOD", "KERNEL", "BANDWIDTH_KM", "POOL_DAYS", "TREES", "SEED", "ANOMALY_GAIN",
              "ANOMALY_DAYS", "RESIDUAL", "SEAM_DAYS", "MIN_SSM", "MAX_SSM", "THREADS", "INPUT_LST_DIFF",
              "OUTPUT_SSM", "OUTPUT_FLAGS", "OUTPUT_UNCERTAINTY", "OUTPUT_COVERAGE"):
        assert n in params
    from ssm_downscaling.processing_provider.compat import FLAG_ADVANCED, FLAG_OPTIONAL

    assert params["BANDWIDTH_KM"].flags() & FLAG_ADVANCED
    assert not params["ANOMALY_DAYS"].flags() & FLAG_OPTIONAL  # has a default
    assert params["ANOMALY_GAIN"].defaultValue() is None  # empty = estimate, not a raw "-1.000000"
    assert params["MIN_SSM"].metadata()["widget_wrapper"]["decimals"] == 2
    assert not params["METHOD"].flags() & FLAG_ADVANCED
    from ssm_downscaling.processing_provider.base import ENUM_KEYS

    assert params["METHOD"].metadata()[ENUM_KEYS][0] == "gwr" and "GWR" in params["METHOD"].options()[0]
    outs = {o.name() for o in alg.outputDefinitions()}
    assert {"OUTPUT_SSM", "OUTPUT_FLAGS", "OUTPUT_UNCERTAINTY", "OUTPUT_COVERAGE", "DAYS", "MEAN_COVERAGE"} <= outs


def test_qgis_process(data, tmp_path):
    args = ["--json", "run", "ssm:downscalessm", "--",
            f"INPUT_SSM={data['ssm']}", f"INPUT_LST={data['lst']}", f"INPUT_NDVI={data['ndvi']}",
            f"INPUT_ALBEDO={data['albedo']}", f"INPUT_DEM={data['dem']}", "END_DATE=2019-07-02", "BANDWIDTH_KM=60",
            f"OUTPUT_SSM={tmp_path / 'ssm'}", f"OUTPUT_FLAGS={tmp_path / 'flags'}",
            f"OUTPUT_UNCERTAINTY={tmp_path / 'unc'}", f"OUTPUT_COVERAGE={tmp_path / 'cov.csv'}"]
    r = run_qgis_process(args, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    results = json.loads(r.stdout[r.stdout.index("{"):])["results"]
    assert results["DAYS"] == 2 and results["MEAN_COVERAGE"] == pytest.approx(100.0)
    assert (tmp_path / "ssm" / f"ssm_{DAYS[1]}.tif").exists() and (tmp_path / "cov.csv").exists()


def test_default_filter_reports_the_retrieval_error_and_a_given_one_is_used(alg_ready, data, tmp_path):
    import csv

    res = _run(_params(data, tmp_path / "a"))
    rows = list(csv.DictReader(open(res["OUTPUT_COVERAGE"])))
    assert rows and all(float(r["retrieval_error"]) >= 0 for r in rows)
    assert all(r["mean_abs_departure"] not in ("", "nan") for r in rows)
    given = _run(_params(data, tmp_path / "b", RETRIEVAL_ERROR=0.03, RESIDUAL=5))  # 5 = filter, by index
    rows = list(csv.DictReader(open(given["OUTPUT_COVERAGE"])))
    assert all(float(r["retrieval_error"]) == pytest.approx(0.03) for r in rows)


def test_dask_scheduler_parameter(alg_ready, data, tmp_path):
    """Advanced, empty by default (this process, all cores); a local Dask cluster writes the
    same bytes; an address that is not one is a clear error."""
    import hashlib

    from qgis import processing
    from qgis.core import QgsProcessingException

    from ssm_downscaling.core.runner import dask_available
    from ssm_downscaling.processing_provider.compat import FLAG_ADVANCED, FLAG_OPTIONAL

    alg = alg_ready.algorithmById("ssm:downscalessm")
    p = alg.parameterDefinition("DASK_SCHEDULER")
    assert p.flags() & FLAG_ADVANCED and p.flags() & FLAG_OPTIONAL and p.defaultValue() is None
    assert "Parallel days" in alg.shortHelpString() and "dask-jobqueue" in alg.shortHelpString()

    def digests(out: Path) -> dict:
        return {q.name: hashlib.sha256(q.read_bytes()).hexdigest() for q in sorted(out.rglob("*.tif"))}

    kw = dict(END_DATE="2019-07-03", BANDWIDTH_KM=60)
    res = _run(_params(data, tmp_path / "here", **kw))
    assert res["DAYS"] == 3
    with pytest.raises(QgsProcessingException, match="not a Dask scheduler address"):
        processing.run("ssm:downscalessm", _params(data, tmp_path / "bad", DASK_SCHEDULER="my cluster", **kw))
    if not dask_available():
        pytest.skip("dask.distributed is not installed (optional: apt install python3-dask python3-distributed)")
    res2 = _run(_params(data, tmp_path / "dask", DASK_SCHEDULER="local:2", **kw))
    assert res2["DAYS"] == 3
    assert digests(tmp_path / "dask") == digests(tmp_path / "here") and len(digests(tmp_path / "here")) == 9
