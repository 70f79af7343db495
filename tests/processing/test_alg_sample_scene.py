"""ssm:samplescene through processing.run (pytest-qgis) and qgis_process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ssm_testing import run_qgis_process

SMALL = {"SIZE_KM": 72, "DAYS": 3, "STATIONS": 4, "SPINUP_DAYS": 2, "START_DATE": "2019-07-01"}


def test_processing_run_writes_the_scene(alg_ready, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    progress: list[float] = []

    class Feedback(QgsProcessingFeedback):
        def setProgress(self, p):
            progress.append(p)
            super().setProgress(p)

    context = QgsProcessingContext()
    out = tmp_path / "scene"
    res = processing.run("ssm:samplescene", {**SMALL, "PLACE": "tibet", "SEED": 3, "OUTPUT": str(out)},
                         feedback=Feedback(), context=context)
    assert Path(res["OUTPUT"]) == out
    days = ["2019-07-01", "2019-07-02", "2019-07-03"]
    for key, prefix in (("SSM_COARSE", "ssm_coarse"), ("LST", "lst"), ("LST_BACKGROUND", "lst_background"),
                        ("ALBEDO", "albedo"), ("TRUTH_SSM", "ssm"), ("TRUTH_LST", "lst"), ("TRUTH_CLOUD", "cloud")):
        assert sorted(p.name for p in Path(res[key]).glob("*.tif")) == [f"{prefix}_{d}.tif" for d in days], key
        # the folders QGIS shows get .qml sidecars (styled from the Browser); the others do not need them
        assert {p.suffix for p in Path(res[key]).iterdir()} <= {".tif", ".qml"}
    assert Path(res["NDVI"]) == out / "inputs" / "ndvi" and any(Path(res["NDVI"]).iterdir())
    assert Path(res["DEM"]) == out / "inputs" / "dem.tif" and Path(res["DEM"]).exists()
    assert Path(res["STATIONS"]).read_text().startswith("station_id,lon,lat,date,sm,depth,network")
    scene = json.loads(Path(res["SCENE_JSON"]).read_text())
    assert (scene["seed"], scene["width_km"], scene["days"], scene["start_date"]) == (3, 72, 3, "2019-07-01")
    assert 0.0 <= res["MEAN_CLOUD_COVER"] <= 1.0 and res["SEAM_DAYS"] == len(scene["seam_days"])
    assert progress and progress == sorted(progress) and progress[-1] == pytest.approx(100.0)
    # stations, elevation, and every day of the coarse and the true soil moisture
    assert len(context.layersToLoadOnCompletion()) == 2 + 2 * len(days)


def test_height_and_place(alg_ready, tmp_path):
    from qgis import processing

    res = processing.run("ssm:samplescene", {**SMALL, "PLACE": "loess", "HEIGHT_KM": 40, "DAYS": 1,
                                             "OUTPUT": str(tmp_path / "loess")})
    scene = json.loads(Path(res["SCENE_JSON"]).read_text())
    assert (scene["place"], scene["width_km"], scene["height_km"]) == ("loess", 72, 40)
    assert scene["terrain"]["source"] == "fractal"


@pytest.mark.parametrize("place", ["tibet", "loess", "northeast", "south", "china"])
def test_scene_layers_have_a_crs_qgis_names(alg_ready, tmp_path, place):
    """The 1 km layers carry an authority CRS (Asia North Albers Equal Area, ESRI:102025):
    QGIS names it in the layer properties and in its status bar, which shows only a CRS's
    authority id ("Unknown CRS" for a custom one, as the scene's own LAEA was)."""
    from qgis import processing
    from qgis.core import QgsCoordinateReferenceSystem, QgsRasterLayer

    from ssm_downscaling.processing_provider.compat import qgis_enum

    short = qgis_enum("Qgis.CrsIdentifierType.ShortString", "QgsCoordinateReferenceSystem.IdentifierType.ShortString")
    medium = qgis_enum("Qgis.CrsIdentifierType.MediumString",
                       "QgsCoordinateReferenceSystem.IdentifierType.MediumString")
    res = processing.run("ssm:samplescene", {**SMALL, "DAYS": 1, "SPINUP_DAYS": 1, "STATIONS": 1, "PLACE": place,
                                             "OUTPUT": str(tmp_path / place)})
    for path in (Path(res["DEM"]), *Path(res["TRUTH_SSM"]).glob("*.tif"), *Path(res["LST"]).glob("*.tif")):
        crs = QgsRasterLayer(str(path), path.stem).crs()
        assert crs.isValid(), path
        assert crs.authid() == "ESRI:102025", path
        assert crs.description() == "Asia_North_Albers_Equal_Area_Conic", path
        assert crs.userFriendlyIdentifier(short) == "ESRI:102025"
        assert crs.userFriendlyIdentifier(medium) == "ESRI:102025 - Asia_North_Albers_Equal_Area_Conic"
        assert crs == QgsCoordinateReferenceSystem("ESRI:102025")
    coarse = next(Path(res["SSM_COARSE"]).glob("*.tif"))
    assert QgsRasterLayer(str(coarse), "coarse").crs().authid() == "EPSG:6933"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"SIZE_KM": -5}, "SIZE_KM: the scene width must be at least 1 km"),
        ({"DAYS": 0}, "DAYS: at least one day"),
        ({"PLACE": "atlantis"}, "unknown place 'atlantis'"),
        ({"CLOUDINESS": 1.5}, "CLOUDINESS: must be between 0 and 1"),
        ({"STATIONS": -2}, "STATIONS: the number of stations cannot be negative"),
    ],
)
def test_nonsense_gives_a_clear_error(alg_ready, tmp_path, bad, message):
    from qgis import processing
    from qgis.core import QgsProcessingException

    out = tmp_path / "bad"
    with pytest.raises(QgsProcessingException) as err:
        processing.run("ssm:samplescene", {**SMALL, **bad, "OUTPUT": str(out)})
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)
    assert not out.exists()


def test_non_empty_folder_and_cancel(alg_ready, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    user = tmp_path / "mine"
    user.mkdir()
    (user / "keep.txt").write_text("x")
    with pytest.raises(QgsProcessingException, match="not empty"):
        processing.run("ssm:samplescene", {**SMALL, "OUTPUT": str(user)})
    assert [p.name for p in user.iterdir()] == ["keep.txt"]
    fb = QgsProcessingFeedback()
    fb.cancel()
    out = tmp_path / "cancelled"
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("ssm:samplescene", {**SMALL, "OUTPUT": str(out)}, feedback=fb)
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_help_and_parameters_are_modeler_friendly(alg_ready):
    from ssm_downscaling.processing_provider.compat import FLAG_ADVANCED

    alg = alg_ready.algorithmById("ssm:samplescene")
    assert alg.displayName() == "Create sample scene"
    assert alg.group() == "1 - Sample data" and alg.groupId() == "sampledata"
    assert "EASE-Grid 2.0" in alg.shortHelpString() and "scene.json" in alg.shortHelpString()
    params = {p.name(): p for p in alg.parameterDefinitions()}
    assert set(params) == {"PLACE", "SIZE_KM", "HEIGHT_KM", "DAYS", "START_DATE", "CLOUDINESS", "STATIONS", "SEED",
                           "SPINUP_DAYS", "OUTPUT"}
    from ssm_downscaling.processing_provider.base import ENUM_KEYS

    keys = params["PLACE"].metadata()[ENUM_KEYS]
    assert keys[params["PLACE"].defaultValue()] == "tibet"
    assert {"tibet", "loess", "northeast", "south", "china"} <= set(keys)
    assert params["HEIGHT_KM"].flags() & FLAG_ADVANCED
    assert not params["SIZE_KM"].flags() & FLAG_ADVANCED
    assert params["START_DATE"].dataType() == params["START_DATE"].Date
    outs = {o.name() for o in alg.outputDefinitions()}
    assert {"OUTPUT", "SSM_COARSE", "LST", "LST_BACKGROUND", "NDVI", "ALBEDO", "DEM", "STATIONS", "TRUTH_SSM",
            "TRUTH_LST", "TRUTH_CLOUD", "SCENE_JSON"} <= outs


def test_qgis_process(tmp_path):
    out = tmp_path / "qp"
    args = ["--json", "run", "ssm:samplescene", "--", "PLACE=tibet", "SIZE_KM=72", "DAYS=2", "SPINUP_DAYS=1",
            "STATIONS=3", "START_DATE=2019-06-01", f"OUTPUT={out}"]
    r = run_qgis_process(args, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    results = json.loads(r.stdout[r.stdout.index("{"):])["results"]
    assert Path(results["OUTPUT"]) == out
    assert (out / "truth" / "ssm" / "ssm_2019-06-02.tif").exists()
    assert Path(results["SSM_COARSE"]) == out / "inputs" / "ssm_coarse"
    # bad input: a clear message, no traceback, non-zero exit
    r = run_qgis_process(["run", "ssm:samplescene", "--", "SIZE_KM=-3", f"OUTPUT={tmp_path / 'bad'}"], timeout=120)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "SIZE_KM" in text and "Traceback" not in text
