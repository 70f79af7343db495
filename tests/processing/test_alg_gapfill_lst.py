"""ssm:gapfilllst through processing.run (pytest-qgis) and qgis_process, on a small sample scene."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ssm_testing import run_qgis_process


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    from ssm_downscaling.core.scene import small_scene

    info = small_scene(tmp_path_factory.mktemp("scene") / "s", days=6)
    return {k: Path(v) for k, v in info.paths.items()}


def params(scene, out: Path, **kw) -> dict:
    p = {
        "INPUT_LST": str(scene["lst"]),
        "INPUT_BACKGROUND": str(scene["lst_background"]),
        "INPUT_DEM": str(scene["dem"]),
        "INPUT_NDVI": str(scene["ndvi"]),
        "METHOD": "anomaly",
        "WINDOW": 5,
        "OUTPUT_LST": str(out / "lst"),
        "OUTPUT_FLAGS": str(out / "flags"),
    }
    p.update(kw)
    return p


def test_processing_run_fills_the_scene(alg_ready, scene, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from ssm_downscaling.core.series import DailySeries, read_raster

    progress: list[float] = []
    infos: list[str] = []

    class Feedback(QgsProcessingFeedback):
        def setProgress(self, p):
            progress.append(p)
            super().setProgress(p)

        def pushInfo(self, msg):
            infos.append(msg)
            super().pushInfo(msg)

    context = QgsProcessingContext()
    res = processing.run("ssm:gapfilllst", params(scene, tmp_path), feedback=Feedback(), context=context)
    # defaults apply to parameters left out: the air's lapse rate under cloud
    assert any("cloudy-sky lapse rate -6.50 K/km" in m for m in infos), infos[-3:]
    days = DailySeries.from_folder(scene["lst"]).dates
    assert res["DAYS"] == len(days) and res["SKIPPED_DAYS"] == 0
    assert sorted(p.name for p in Path(res["OUTPUT_LST"]).glob("*.tif")) == [f"lst_{d}.tif" for d in days]
    assert sorted(p.name for p in Path(res["OUTPUT_FLAGS"]).glob("*.tif")) == [f"lst_flag_{d}.tif" for d in days]
    assert 0 < res["GAP_PERCENT"] < 100 and res["FILLED_PERCENT"] > 99
    truth = DailySeries.from_folder(scene["truth_lst"])
    errs = []
    for d in days:
        src = read_raster(scene["lst"] / f"lst_{d}.tif")
        out = read_raster(Path(res["OUTPUT_LST"]) / f"lst_{d}.tif")
        flags = read_raster(Path(res["OUTPUT_FLAGS"]) / f"lst_flag_{d}.tif", resampling="nearest")
        obs = np.isfinite(src)
        assert np.array_equal(out[obs], src[obs]) and (flags[obs] == 0).all()
        filled = flags == 1
        errs.append(out[filled] - truth.read(d)[filled])
    rmse = float(np.sqrt(np.nanmean(np.concatenate(errs) ** 2)))
    assert rmse < 3.0
    assert progress and progress == sorted(progress) and progress[-1] == pytest.approx(100.0)
    assert len(context.layersToLoadOnCompletion()) == 2 * len(days)  # every day of LST and flags (temporal)


def test_baseline_without_background(alg_ready, scene, tmp_path):
    from qgis import processing

    res = processing.run("ssm:gapfilllst", params(scene, tmp_path, METHOD="temporal", INPUT_BACKGROUND=None,
                                                  START_DATE="2019-06-02", END_DATE="2019-06-03", MAX_GAP=2))
    assert res["DAYS"] == 2
    assert sorted(p.name for p in Path(res["OUTPUT_LST"]).glob("*.tif")) == ["lst_2019-06-02.tif", "lst_2019-06-03.tif"]


def test_missing_background_day_is_a_warning(alg_ready, scene, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingFeedback

    bg = tmp_path / "bg"
    shutil.copytree(scene["lst_background"], bg)
    (bg / "lst_background_2019-06-03.tif").unlink()
    warnings: list[str] = []

    class Feedback(QgsProcessingFeedback):
        def pushWarning(self, msg):
            warnings.append(msg)
            super().pushWarning(msg)

    res = processing.run("ssm:gapfilllst", params(scene, tmp_path / "o", INPUT_BACKGROUND=str(bg)), feedback=Feedback())
    assert res["SKIPPED_DAYS"] == 1
    assert any("2019-06-03 skipped" in w and "no background file" in w for w in warnings)


@pytest.mark.parametrize("case", ["far", "dates", "unreadable", "no_background"])
def test_bad_inputs_give_clear_errors_and_write_nothing(alg_ready, scene, tmp_path, case):
    from qgis import processing
    from qgis.core import QgsProcessingException

    from ssm_downscaling.core.grid import Grid, to_wkt
    from ssm_downscaling.core.series import write_day

    kw: dict = {}
    if case == "far":
        far = tmp_path / "far"
        g = Grid.from_bounds(to_wkt(4326), (-10.0, 40.0, -9.0, 41.0), 0.1)
        for i in range(6):
            write_day(far, "bg", dt.date(2019, 6, 1) + dt.timedelta(days=i), np.full(g.shape, 290.0, np.float32), g)
        kw["INPUT_BACKGROUND"], message = str(far), "does not overlap"
    elif case == "dates":
        other = tmp_path / "bg2018"
        other.mkdir()
        for p in scene["lst_background"].iterdir():
            shutil.copy(p, other / p.name.replace("2019", "2018"))
        kw["INPUT_BACKGROUND"], message = str(other), "No dates in common"
    elif case == "unreadable":
        lst = tmp_path / "lst"
        shutil.copytree(scene["lst"], lst)
        (lst / "lst_2019-06-04.tif").write_bytes(b"not a raster")
        kw["INPUT_LST"], message = str(lst), "lst_2019-06-04.tif"
    else:
        kw["INPUT_BACKGROUND"], message = None, "needs an all-weather background"
    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException) as err:
        processing.run("ssm:gapfilllst", params(scene, out, **kw))
    assert message in str(err.value) and "Traceback" not in str(err.value)
    assert not (out / "lst").exists() or not any((out / "lst").iterdir())
    assert not (out / "flags").exists() or not any((out / "flags").iterdir())


def test_cancel_between_days(alg_ready, scene, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    fb = QgsProcessingFeedback()
    fb.cancel()
    out = tmp_path / "cancelled"
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("ssm:gapfilllst", params(scene, out, METHOD="background"), feedback=fb)
    assert not (out / "lst").exists() or not any((out / "lst").iterdir())


def test_parameters_are_modeler_friendly(alg_ready):
    from ssm_downscaling.processing_provider.compat import DATETIME_DATE, FLAG_ADVANCED, FLAG_OPTIONAL

    alg = alg_ready.algorithmById("ssm:gapfilllst")
    assert alg.displayName() == "Gap-fill land surface temperature"
    assert alg.group() == "2 - Land surface temperature" and alg.groupId() == "lst"
    assert "anomaly" in alg.shortHelpString() and "lst_flag_YYYY-MM-DD.tif" in alg.shortHelpString()
    params_ = {p.name(): p for p in alg.parameterDefinitions()}
    basic = {"INPUT_LST", "INPUT_BACKGROUND", "INPUT_DEM", "INPUT_NDVI", "START_DATE", "END_DATE", "METHOD", "WINDOW",
             "OUTPUT_LST", "OUTPUT_FLAGS"}
    assert basic <= set(params_)
    for name, p in params_.items():
        assert p.type() in {"file", "raster", "datetime", "enum", "number", "boolean", "folderDestination", "string"}, name
        advanced = bool(p.flags() & FLAG_ADVANCED)
        assert advanced == (name not in basic), name
        if advanced and p.defaultValue() is not None:  # a default, so no "[optional]" in the dialog
            assert not p.flags() & FLAG_OPTIONAL, name
    from ssm_downscaling.processing_provider.base import ENUM_KEYS

    assert params_["METHOD"].metadata()[ENUM_KEYS] == ["anomaly", "temporal", "spatial", "background"]
    assert params_["METHOD"].options()[0] == "Background + anomaly (default)"  # readable labels in the dialog
    assert params_["START_DATE"].dataType() == DATETIME_DATE
    outputs = {"OUTPUT_LST", "OUTPUT_FLAGS", "DAYS", "SKIPPED_DAYS", "GAP_PERCENT", "FILLED_PERCENT"}
    assert {o.name() for o in alg.outputDefinitions()} >= outputs
    from ssm_downscaling.processing_provider.base import STYLES

    assert (STYLES / "lst.qml").exists() and (STYLES / "lst_flags.qml").exists()


def test_qgis_process(scene, tmp_path):
    out = tmp_path / "qp"
    args = ["--json", "run", "ssm:gapfilllst", "--", f"INPUT_LST={scene['lst']}",
            f"INPUT_BACKGROUND={scene['lst_background']}", f"INPUT_DEM={scene['dem']}", "METHOD=anomaly",
            "WINDOW=3", "START_DATE=2019-06-02", "END_DATE=2019-06-03",
            f"OUTPUT_LST={out / 'lst'}", f"OUTPUT_FLAGS={out / 'flags'}"]
    r = run_qgis_process(args, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    results = json.loads(r.stdout[r.stdout.index("{"):])["results"]
    assert results["DAYS"] == 2 and Path(results["OUTPUT_LST"]) == out / "lst"
    assert (out / "flags" / "lst_flag_2019-06-03.tif").exists()
    r = run_qgis_process(["run", "ssm:gapfilllst", "--", f"INPUT_LST={scene['lst']}", "METHOD=anomaly",
                          f"OUTPUT_LST={tmp_path / 'b1'}", f"OUTPUT_FLAGS={tmp_path / 'b2'}"], timeout=120)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "INPUT_BACKGROUND" in text and "Traceback" not in text


def test_dask_scheduler_parameter(alg_ready, scene, tmp_path):
    """Advanced, empty by default (this process); a local Dask cluster writes the same
    bytes; an address that is not one is a clear error that writes nothing."""
    import hashlib

    from qgis import processing
    from qgis.core import QgsProcessingException

    from ssm_downscaling.core.runner import dask_available
    from ssm_downscaling.processing_provider.compat import FLAG_ADVANCED, FLAG_OPTIONAL

    alg = alg_ready.algorithmById("ssm:gapfilllst")
    p = alg.parameterDefinition("DASK_SCHEDULER")
    assert p.flags() & FLAG_ADVANCED and p.flags() & FLAG_OPTIONAL and p.defaultValue() is None
    assert "Parallel days" in alg.shortHelpString() and "dask-jobqueue" in alg.shortHelpString()

    def digests(out: Path) -> dict:
        return {q.name: hashlib.sha256(q.read_bytes()).hexdigest() for q in sorted(out.rglob("*.tif"))}

    res = processing.run("ssm:gapfilllst", params(scene, tmp_path / "here"))
    assert res["DAYS"] == 6
    with pytest.raises(QgsProcessingException, match="not a Dask scheduler address"):
        processing.run("ssm:gapfilllst", params(scene, tmp_path / "bad", DASK_SCHEDULER="my cluster"))
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").rglob("*.tif"))
    if not dask_available():
        pytest.skip("dask.distributed is not installed (optional: apt install python3-dask python3-distributed)")
    res2 = processing.run("ssm:gapfilllst", params(scene, tmp_path / "dask", DASK_SCHEDULER="local:2"))
    assert res2["DAYS"] == 6 and res2["GAP_PERCENT"] == res["GAP_PERCENT"]
    assert digests(tmp_path / "dask") == digests(tmp_path / "here") and len(digests(tmp_path / "here")) == 12
