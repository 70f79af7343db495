"""The sample scene: truth vs stations gives ubRMSD close to the stations' stated
point-scale noise; the coarse input is clearly worse; clear/cloudy split from the cloud
mask. Station pixels are checked against the scene's own station list."""

from __future__ import annotations

import json

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.series import DailySeries
from ssm_downscaling.core.validation import validate_stations

scene = pytest.importorskip("ssm_downscaling.core.scene", reason="the sample scene generator is not available")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene")
    scene.small_scene(out, days=30, n_stations=20)
    return out, json.loads((out / "scene.json").read_text())


def test_truth_matches_the_stated_station_noise_and_coarse_is_worse(small):
    out, sj = small
    sd = sj["station_noise_sd"]
    truth = validate_stations({"truth": out / "truth" / "ssm"}, out / "stations.csv", flags=out / "truth" / "cloud")
    coarse = validate_stations({"coarse": out / "inputs" / "ssm_coarse"}, out / "stations.csv")
    u_truth = truth.comparison.average("truth")["urmsd"]
    u_coarse = coarse.comparison.average("coarse")["urmsd"]
    assert truth.comparison.average("truth")["n_stations"] == sj["n_stations"]
    # ubRMSD of (truth + static offset + daily noise) vs truth is the noise's sd (clipping at
    # 0.01 m3/m3 and ~30 days per station make it a little smaller on this small scene)
    assert 0.8 * sd < u_truth < 1.1 * sd
    assert u_coarse > 1.5 * u_truth
    # the static offsets come back as the station biases (product minus station = -offset)
    offsets = {s["station_id"]: s["offset"] for s in sj["stations"]}
    b = truth.comparison.metrics("truth")["BIAS"]
    expect = np.array([-offsets[i] for i in truth.stations.ids])
    assert np.corrcoef(b, expect)[0, 1] > 0.9
    # the cloud mask (1 cloud / 0 clear) splits the days; both subsets have the same noise
    assert truth.flag_kind == "lst"
    clear = truth.comparison.average("truth", "clear")
    cloudy = truth.comparison.average("truth", "cloudy")
    n_all, n_clear, n_cloudy = (truth.comparison.metrics("truth", s)["n_obs"] for s in ("all", "clear", "cloudy"))
    np.testing.assert_array_equal(n_clear + n_cloudy, n_all)  # the mask has no unknown at the stations
    assert clear["n_stations"] > 10 and cloudy["n_stations"] > 10
    assert abs(clear["urmsd"] - cloudy["urmsd"]) < 0.3 * sd


def test_station_pixels_agree_with_the_scene(small):
    """The extracted truth equals the truth raster at the scene's own station rows/cols."""
    out, sj = small
    res = validate_stations({"truth": out / "truth" / "ssm"}, out / "stations.csv", min_obs=3)
    series = DailySeries.from_folder(out / "truth" / "ssm")
    pos = {s["station_id"]: (s["row"], s["col"]) for s in sj["stations"]}
    rows = np.array([pos[i][0] for i in res.stations.ids])
    cols = np.array([pos[i][1] for i in res.stations.ids])
    for j, d in enumerate(res.dates[:5]):
        arr = gdal.Open(str(series.path(d))).ReadAsArray().astype(np.float64)
        np.testing.assert_array_equal(res.products["truth"][:, j], arr[rows, cols])
