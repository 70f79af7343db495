"""Scene parameters: defaults, normalisation and clear errors for nonsense."""

from __future__ import annotations

import datetime as dt

import pytest

from ssm_downscaling.core.errors import SsmError
from ssm_downscaling.core.scene import PLACES, SceneConfig, SceneError, generate_scene


def test_defaults_are_the_documented_default_scene():
    cfg = SceneConfig().validated()
    assert (cfg.place, cfg.width, cfg.height, cfg.days, cfg.n_stations, cfg.seed) == ("tibet", 360, 360, 92, 30, 1)
    assert cfg.start == dt.date(2019, 6, 1) and cfg.end == dt.date(2019, 8, 31)
    assert cfg.cloudiness == 0.5
    assert (cfg.lon, cfg.lat) == (89.5, 29.8)


def test_places_cover_the_design():
    assert {"tibet", "loess", "northeast", "south", "china"} <= set(PLACES)
    assert PLACES["tibet"].dem_file and PLACES["china"].dem_file is None
    assert (PLACES["china"].lon, PLACES["china"].lat) == (104.0, 35.0)


def test_normalisation():
    cfg = SceneConfig(place=" Loess ", width_km=100.4, height_km=0, start="2019-07-01", days=3.0).validated()
    assert cfg.place == "loess" and cfg.width == 100 and cfg.height == 100
    assert cfg.start == dt.date(2019, 7, 1) and cfg.days == 3
    assert SceneConfig(width_km=50, height_km=20).validated().height == 20
    assert SceneConfig(start=dt.datetime(2019, 6, 3, 12)).validated().start == dt.date(2019, 6, 3)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(place="atlantis"), ["place", "atlantis", "tibet"]),
        (dict(width_km=-5), ["width_km", "> 0"]),
        (dict(width_km=0), ["width_km"]),
        (dict(height_km=-1), ["height_km"]),
        (dict(days=0), ["days", ">= 1"]),
        (dict(days=2.5), ["days", "whole"]),
        (dict(cloudiness=1.5), ["cloudiness", "<= 1"]),
        (dict(cloudiness=-0.1), ["cloudiness"]),
        (dict(n_stations=-1), ["n_stations"]),
        (dict(seed=-3), ["seed"]),
        (dict(spinup_days=-1), ["spinup_days"]),
        (dict(width_km="big"), ["width_km", "number"]),
        (dict(start="June"), ["start", "date"]),
        (dict(coarse_ssm_noise_sd=-0.01), ["coarse_ssm_noise_sd"]),
        (dict(centre_lat=83.0), ["centre_lat"]),
        (dict(centre_lat=79.0, width_km=1500), ["84 degrees"]),
    ],
)
def test_nonsense_is_a_clear_scene_error(kw, words):
    with pytest.raises(SceneError) as err:
        SceneConfig(**kw).validated()
    for w in words:
        assert w in str(err.value)
    assert isinstance(err.value, SsmError) and isinstance(err.value, ValueError)


def test_generate_validates_before_touching_the_folder(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SceneError, match="Unknown place"):
        generate_scene(SceneConfig(place="nowhere"), out)
    assert not out.exists()


def test_too_many_stations_for_the_scene(tmp_path):
    with pytest.raises(SceneError, match="stations"):
        generate_scene(SceneConfig(width_km=6, days=1, spinup_days=0, n_stations=500), tmp_path / "s")
    assert not (tmp_path / "s").exists()  # nothing left behind
