"""Every enum parameter accepts its index and its key (and its label), in processing.run,
qgis_process and saved models; the dialog shows readable labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingParameterEnum
from ssm_testing import run_qgis_process

from ssm_downscaling.processing_provider.base import ENUM_KEYS

ENUMS = {
    "ssm:gapfilllst": {"METHOD": ["anomaly", "temporal", "spatial", "background"]},
    "ssm:downscalessm": {"METHOD": ["gwr", "forest", "dispatch", "bilinear", "nearest"],
                         "KERNEL": ["gaussian", "bisquare"],
                         "RESIDUAL": ["auto", "interp", "smooth", "cell", "none", "filter", "coherent"]},
    "ssm:validatestations": {"FLAG_TYPE": ["auto", "ssm", "lst"]},
    "ssm:samplescene": {"PLACE": ["tibet", "loess", "northeast", "south", "china"]},
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    from ssm_downscaling.core.scene import small_scene

    info = small_scene(tmp_path_factory.mktemp("scene") / "s", days=3)
    return {k: Path(v) for k, v in info.paths.items()}


@pytest.mark.parametrize("alg_id", sorted(ENUMS))
def test_every_enum_has_keys_and_readable_labels(alg_ready, alg_id):
    alg = alg_ready.algorithmById(alg_id)
    enums = {p.name(): p for p in alg.parameterDefinitions() if isinstance(p, QgsProcessingParameterEnum)}
    assert set(enums) == set(ENUMS[alg_id])
    for name, p in enums.items():
        assert not p.usesStaticStrings(), name
        assert p.metadata()[ENUM_KEYS] == ENUMS[alg_id][name]
        assert p.options() != ENUMS[alg_id][name], f"{name}: the drop-down shows keys, not names"


@pytest.mark.parametrize("alg_id", sorted(ENUMS))
def test_index_key_and_label_are_accepted(alg_ready, alg_id):
    alg = alg_ready.algorithmById(alg_id).create()
    context = QgsProcessingContext()
    for name, keys in ENUMS[alg_id].items():
        d = alg.parameterDefinition(name)
        for i, key in enumerate(keys):
            for value in (i, str(i), key, key.upper(), d.options()[i]):
                assert alg.parameter_enum({name: value}, name, context) == key, (name, value)
        assert alg.parameter_enum({}, name, context) == keys[d.defaultValue()]
        ok, msg = alg.checkParameterValues({name: "nonsense"}, context)
        assert not ok and "nonsense" in msg and keys[0] in msg
        ok, msg = alg.checkParameterValues({name: str(len(keys))}, context)
        assert not ok


def test_index_through_processing_run(alg_ready, scene, tmp_path):
    """METHOD=2 (spatial) used to fail with "unknown method '2'"."""
    from qgis import processing

    res = processing.run("ssm:gapfilllst", {
        "INPUT_LST": str(scene["lst"]), "METHOD": 2, "WINDOW": 3,
        "OUTPUT_LST": str(tmp_path / "lst"), "OUTPUT_FLAGS": str(tmp_path / "flags")})
    assert res["DAYS"] == 3
    res = processing.run("ssm:downscalessm", {
        "INPUT_SSM": str(scene["ssm_coarse"]), "INPUT_LST": str(scene["truth_lst"]), "INPUT_NDVI": str(scene["ndvi"]),
        "INPUT_ALBEDO": str(scene["albedo"]), "METHOD": "3", "RESIDUAL": "cell",
        "OUTPUT_SSM": str(tmp_path / "ssm"), "OUTPUT_FLAGS": str(tmp_path / "sf"),
        "OUTPUT_UNCERTAINTY": str(tmp_path / "su"), "OUTPUT_COVERAGE": str(tmp_path / "cov.csv")})
    assert res["DAYS"] == 3


def test_index_through_qgis_process(scene, tmp_path):
    """METHOD=3 used to fail with "Incorrect parameter value for METHOD"."""
    args = ["--json", "run", "ssm:downscalessm", "--",
            f"INPUT_SSM={scene['ssm_coarse']}", f"INPUT_LST={scene['truth_lst']}", f"INPUT_NDVI={scene['ndvi']}",
            f"INPUT_ALBEDO={scene['albedo']}", "METHOD=3", "KERNEL=1", "RESIDUAL=cell",
            f"OUTPUT_SSM={tmp_path / 'ssm'}", f"OUTPUT_FLAGS={tmp_path / 'flags'}",
            f"OUTPUT_UNCERTAINTY={tmp_path / 'unc'}", f"OUTPUT_COVERAGE={tmp_path / 'cov.csv'}"]
    r = run_qgis_process(args, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    results = json.loads(r.stdout[r.stdout.index("{"):])["results"]
    assert results["DAYS"] == 3
    assert "bilinear" in r.stdout + r.stderr
