"""The gap filler on a small sample scene (core.scene): the default method against the
baselines on the truly cloudy pixels. The full comparison is benchmarks/bench_lst.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssm_downscaling.core.lst import FLAG_FILLED, METHODS, gapfill_series
from ssm_downscaling.core.series import DailySeries, read_raster


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    scene_mod = pytest.importorskip("ssm_downscaling.core.scene")
    info = scene_mod.small_scene(tmp_path_factory.mktemp("scene") / "s", width_km=96, height_km=96, days=12)
    return {k: Path(v) for k, v in info.paths.items()}


def cloudy_rmse(scene: dict[str, Path], out: Path) -> tuple[float, float]:
    errs, n_cloudy, n_filled = [], 0, 0
    truth = DailySeries.from_folder(scene["truth_lst"])
    cloud = DailySeries.from_folder(scene["truth_cloud"])
    for day in truth.dates:
        t = truth.read(day)
        c = (read_raster(cloud.path(day), resampling="nearest") == 1) & np.isfinite(t)
        est = read_raster(out / "lst" / f"lst_{day}.tif")
        flags = read_raster(out / "flags" / f"lst_flag_{day}.tif", resampling="nearest")
        ok = c & (flags == FLAG_FILLED)
        errs.append(est[ok] - t[ok])
        n_cloudy += int(c.sum())
        n_filled += int(ok.sum())
    e = np.concatenate(errs)
    return float(np.sqrt(np.mean(e**2))), n_filled / max(n_cloudy, 1)


def test_default_method_beats_the_baselines_on_cloudy_pixels(scene, tmp_path):
    rmse = {}
    for m in METHODS:
        out = tmp_path / m
        gapfill_series(scene["lst"], scene["lst_background"], out / "lst", out / "flags", dem=scene["dem"],
                       ndvi=scene["ndvi"], method=m)
        rmse[m], cover = cloudy_rmse(scene, out)
        if m in ("anomaly", "background"):
            assert cover > 0.99
    assert rmse["anomaly"] < 2.5, rmse
    assert rmse["anomaly"] < min(v for k, v in rmse.items() if k != "anomaly"), rmse
