"""ssm:validatestations through processing.run (pytest-qgis) and qgis_process."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from ssm_testing import run_qgis_process

from ssm_downscaling.core.grid import Grid, to_wkt, transform_points
from ssm_downscaling.core.series import write_day

START = dt.date(2020, 5, 1)
N_DAYS = 25


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """Two products (the second = first + 0.02), SSM flags, and a CSV of 6 stations
    (one outside the rasters) whose values are the product minus 0.01 plus noise."""
    root = tmp_path_factory.mktemp("valalg")
    grid = Grid.from_bounds("EPSG:32645", (400_000, 3_300_000, 420_000, 3_316_000), 1000)  # 20 x 16 px
    r, c = np.mgrid[0 : grid.height, 0 : grid.width]
    rows, cols = np.array([1, 4, 8, 12, 15]), np.array([2, 17, 9, 5, 19])
    x, y = grid.xy(rows, cols)
    lon, lat = transform_points(x, y, grid.crs_wkt, to_wkt(4326))
    rng = np.random.default_rng(5)
    lines = ["station_id,lon,lat,date,sm,network"]
    for j in range(N_DAYS):
        d = START + dt.timedelta(days=j)
        field = (0.15 + 0.004 * r + 0.002 * c + 0.01 * np.sin(j / 3.0) * (1 + 0.05 * c)).astype(np.float32)
        write_day(root / "fine", "ssm", d, field, grid)
        write_day(root / "other", "ssm_other", d, field + np.float32(0.02), grid)
        write_day(root / "flags", "ssm_flags", d, np.full(grid.shape, 0 if j % 3 else 2, np.uint8), grid,
                  description="0 coarse observed, 1 seam-filled, 2 LST gap-filled under cloud, 3 both")
        for i in range(len(rows)):
            v = float(field[rows[i], cols[i]]) - 0.01 + rng.normal(0, 0.01)
            lines.append(f"ST{i},{float(lon[i])!r},{float(lat[i])!r},{d.isoformat()},{v!r},TEST")
        lines.append(f"OUT,5.0,45.0,{d.isoformat()},0.2,TEST")
    (root / "stations.csv").write_text("\n".join(lines) + "\n")
    return {"root": root, "fine": root / "fine", "other": root / "other", "flags": root / "flags",
            "stations": root / "stations.csv"}


def _params(data, out: Path, **kw) -> dict:
    p = {
        "PRODUCT": str(data["fine"]),
        "PRODUCT_NAME": "1 km",
        "PRODUCT_2": str(data["other"]),
        "PRODUCT_2_NAME": "other",
        "STATIONS": str(data["stations"]),
        "FLAGS": str(data["flags"]),
        "START_DATE": "2020-05-01",
        "END_DATE": "2020-05-25",
        "MIN_OBS": 10,
        "OUTPUT": str(out / "stations.gpkg"),
        "OUTPUT_TABLE": str(out / "metrics.csv"),
        "OUTPUT_HTML": str(out / "report.html"),
    }
    p.update(kw)
    return p


def test_processing_run_writes_layer_table_and_report(alg_ready, data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingFeedback, QgsVectorLayer

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings: list[str] = []

        def pushWarning(self, text):
            self.warnings.append(text)
            super().pushWarning(text)

    fb = Feedback()
    res = processing.run("ssm:validatestations", _params(data, tmp_path), feedback=fb)
    assert any("OUT" in w and "outside every product raster" in w for w in fb.warnings)
    lyr = QgsVectorLayer(res["OUTPUT"], "v", "ogr")
    assert lyr.isValid() and lyr.featureCount() == 5
    names = lyr.fields().names()
    assert {"station_id", "p1_name", "p1_urmsd", "p2_urmsd", "p1_clear_n_obs", "p1_cloudy_urmsd"} <= set(names)
    feats = {f["station_id"]: f for f in lyr.getFeatures()}
    assert feats["ST0"]["p1_name"] == "1 km" and feats["ST0"]["p2_name"] == "other"
    assert feats["ST0"]["p1_n_obs"] == N_DAYS
    assert feats["ST0"]["p1_clear_n_obs"] + feats["ST0"]["p1_cloudy_n_obs"] == N_DAYS
    assert feats["ST0"]["p1_cloudy_n_obs"] == len(range(0, N_DAYS, 3))
    assert feats["ST2"]["p2_BIAS"] - feats["ST2"]["p1_BIAS"] == pytest.approx(0.02, abs=1e-6)
    assert 0.005 < feats["ST2"]["p1_urmsd"] < 0.02
    # the style colours the stations by the main product's ubRMSD, NULL (too few days) grey
    from ssm_downscaling.processing_provider.base import STYLES

    msg, ok = lyr.loadNamedStyle(str(STYLES / "validation_stations.qml"))
    assert ok, msg
    rules = lyr.renderer().rootRule().children()
    assert lyr.renderer().type() == "RuleRenderer" and len(rules) == 7
    assert all('"p1_urmsd"' in r.filterExpression() for r in rules)
    rows = list(csv.DictReader(open(res["OUTPUT_TABLE"])))
    assert len(rows) == 5 * 2 * 3
    html = Path(res["OUTPUT_HTML"]).read_text()
    assert "Station averages" in html and "ST0" in html
    for suffix in ("scatter", "map", "timeseries"):
        assert (tmp_path / f"report_{suffix}.png").stat().st_size > 1000
    urmsd = [feats[f"ST{i}"]["p1_urmsd"] for i in range(5)]
    assert res["MEAN_UBRMSD"] == pytest.approx(np.mean(urmsd))
    assert res["N_STATIONS"] == 5 and 0.5 < res["MEAN_R"] <= 1.0


def test_processing_bad_input_gives_clear_errors(alg_ready, data, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingException

    far = tmp_path / "far.csv"
    far.write_text("station_id,lon,lat,date,sm\nF1,5,45,2020-05-02,0.2\nF2,6,46,2020-05-03,0.2\n")
    out = tmp_path / "o1"
    with pytest.raises(QgsProcessingException, match="Every station lies outside the rasters"):
        processing.run("ssm:validatestations", _params(data, out, STATIONS=str(far)))
    assert not out.exists() or not any(out.iterdir())  # nothing written as if it were a result
    with pytest.raises(QgsProcessingException, match="No station has at least min_obs=100"):
        processing.run("ssm:validatestations", _params(data, tmp_path / "o2", MIN_OBS=100))
    with pytest.raises(QgsProcessingException, match="either as a CSV file"):
        processing.run("ssm:validatestations", _params(data, tmp_path / "o3", ISMN=str(data["root"])))
    with pytest.raises(QgsProcessingException, match="WINDOW must be odd"):
        processing.run("ssm:validatestations", _params(data, tmp_path / "o4", WINDOW=2))
    with pytest.raises(QgsProcessingException, match="No station value between 2021-01-01 and 2021-02-01"):
        processing.run("ssm:validatestations", _params(data, tmp_path / "o5", START_DATE="2021-01-01",
                                                       END_DATE="2021-02-01"))


def test_help_and_parameters_are_modeler_friendly(alg_ready):
    alg = alg_ready.algorithmById("ssm:validatestations")
    assert alg.group() == "4 - Validation" and "pytesmo" in alg.shortHelpString()
    names = [p.name() for p in alg.parameterDefinitions()]
    for n in ("PRODUCT", "PRODUCT_2", "PRODUCT_4", "STATIONS", "ISMN", "FLAGS", "FLAG_TYPE", "START_DATE", "END_DATE",
              "DEPTH_MIN", "DEPTH_MAX", "WINDOW", "MIN_OBS", "OUTPUT", "OUTPUT_TABLE", "OUTPUT_HTML"):
        assert n in names
    outs = [o.name() for o in alg.outputDefinitions()]
    assert {"OUTPUT", "OUTPUT_TABLE", "OUTPUT_HTML", "MEAN_UBRMSD", "N_STATIONS"} <= set(outs)


def test_qgis_process(data, tmp_path):
    args = ["--json", "run", "ssm:validatestations", "--",
            f"PRODUCT={data['fine']}", f"STATIONS={data['stations']}", f"FLAGS={data['flags']}", "FLAG_TYPE=ssm",
            "WINDOW=3", "MIN_OBS=10", f"OUTPUT={tmp_path / 'st.gpkg'}", f"OUTPUT_TABLE={tmp_path / 'm.csv'}",
            f"OUTPUT_HTML={tmp_path / 'r.html'}"]
    r = run_qgis_process(args, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = json.loads(r.stdout[r.stdout.index("{"):])
    results = out["results"]
    assert results["N_STATIONS"] == 5 and 0.0 < results["MEAN_UBRMSD"] < 0.03
    assert (tmp_path / "st.gpkg").exists() and (tmp_path / "r_map.png").exists()
    summary = json.loads(Path(results["OUTPUT_SUMMARY"]).read_text())
    mean_all = next(a for a in summary["averages"] if a["subset"] == "all" and a["statistic"] == "mean")
    assert mean_all["urmsd"] == pytest.approx(results["MEAN_UBRMSD"])
