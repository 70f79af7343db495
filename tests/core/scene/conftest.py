"""Scenes shared by the sample-scene tests (generated once per session, small and fast)."""

from __future__ import annotations

import pytest

from ssm_downscaling.core.scene import SceneConfig, SceneInfo, generate_scene

#: a scene big enough for statistics (6 x 6 coarse cells, 12 days) yet quick to make
MEDIUM = SceneConfig(place="tibet", width_km=216, days=12, spinup_days=5, n_stations=12, seed=1)


@pytest.fixture(scope="session")
def medium_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneInfo:
    return generate_scene(MEDIUM, tmp_path_factory.mktemp("scene") / "medium")
