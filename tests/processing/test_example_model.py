"""The shipped Graphical Modeler workflow (processing_provider/models/*.model3) chains the
four tools; it runs through processing.run and qgis_process, and the Modeler offers each
tool's folder outputs as inputs of the next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingModelAlgorithm, QgsVectorLayer
from ssm_testing import ROOT, run_qgis_process

MODEL = ROOT / "processing_provider" / "models" / "scene_to_validation.model3"


@pytest.fixture(scope="module")
def model(alg_ready):
    m = QgsProcessingModelAlgorithm()
    assert m.fromFile(str(MODEL)), MODEL
    return m


def test_model_is_valid_and_complete(model):
    ok, issues = model.validate()
    assert ok, issues
    algs = sorted(c.algorithmId() for c in model.childAlgorithms().values())
    assert algs == ["ssm:downscalessm", "ssm:gapfilllst", "ssm:samplescene", "ssm:validatestations"]
    names = {p.name() for p in model.parameterDefinitions()}
    assert {"size_km", "days", "seed"} <= names


def test_model_runs_with_processing(model, tmp_path):
    from qgis import processing

    dests = {p.name(): p for p in model.destinationParameterDefinitions()}
    report_key = next(k for k in dests if k.endswith("report"))
    stations_key = next(k for k in dests if k.endswith("stations"))
    ssm_key = next(k for k in dests if k.endswith("ssm_1km"))
    params = {"size_km": 72, "days": 12, "seed": 3, report_key: str(tmp_path / "report.html"),
              stations_key: str(tmp_path / "stations.gpkg"), ssm_key: str(tmp_path / "ssm")}
    res = processing.run(model, params)
    assert Path(res[report_key]).exists()
    assert len(list((tmp_path / "ssm").glob("ssm_*.tif"))) == 12
    layer = QgsVectorLayer(res[stations_key], "stations", "ogr")
    assert layer.isValid() and layer.featureCount() >= 1
    summary = json.loads(Path(str(tmp_path / "report_summary.json")).read_text())
    products = {a["product"] for a in summary["averages"]}
    assert products == {"downscaled 1 km", "coarse input", "truth"}


def test_modeler_offers_folder_outputs_to_the_next_tool(model, qgis_app):
    """The Modeler's own parameter widget (QGIS 3.22) lists the gap filler's output folders
    as sources for the downscaler's LST input, so users can wire the chain by hand."""
    from qgis.core import QgsProcessingModelChildParameterSource
    from qgis.gui import QgsGui
    from qgis.PyQt.QtWidgets import QComboBox

    child = next(c for c in model.childAlgorithms().values() if c.algorithmId() == "ssm:downscalessm")
    w = QgsGui.processingGuiRegistry().createModelerParameterWidget(
        model, child.childId(), child.algorithm().parameterDefinition("INPUT_LST"), QgsProcessingContext()
    )
    offered = [cb.itemText(i) for cb in w.findChildren(QComboBox) for i in range(cb.count())]
    assert "“All-weather LST” from algorithm “Gap-fill LST”" in offered, offered
    assert "“LST flags” from algorithm “Gap-fill LST”" in offered
    assert "“True all-weather LST folder” from algorithm “Create the sample scene”" in offered
    w.setWidgetValue(QgsProcessingModelChildParameterSource.fromStaticValue("/data/lst"))
    assert w.value().staticValue() == "/data/lst"
    w.setWidgetValue(child.parameterSources()["INPUT_LST"][0])
    assert w.value().outputName() == "OUTPUT_LST"


@pytest.mark.slow
def test_model_runs_with_qgis_process(tmp_path):
    outs = [f"ssm:downscalessm_1:ssm_1km={tmp_path / 'ssm'}",
            f"ssm:validatestations_1:report={tmp_path / 'report.html'}",
            f"ssm:validatestations_1:stations={tmp_path / 'stations.gpkg'}"]
    r = run_qgis_process(["--json", "run", str(MODEL), "--", "size_km=72", "days=12", "seed=5", *outs])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads(r.stdout[r.stdout.find("{"):])
    report = next(v for k, v in out["results"].items() if k.endswith("report"))
    assert Path(report).exists()
    assert len(list((tmp_path / "ssm").glob("ssm_*.tif"))) == 12
    assert (tmp_path / "stations.gpkg").exists()


def test_model_in_the_toolbox_runs_five_days(alg_ready, tmp_path):
    """The model is listed under our provider, exposes the minimum matched days, and a run
    of 5 days validates (the validation step asked for 10 matched days before)."""
    from qgis import processing

    models = [a for a in alg_ready.providerById("ssm").algorithms() if a.id().startswith("ssm:")
              and a.group() == "5 - Workflows"]
    assert len(models) == 1
    model = models[0].create()  # as the toolbox's dialog does
    assert "min_obs" in {p.name() for p in model.parameterDefinitions()}
    dests = {p.name() for p in model.destinationParameterDefinitions()}
    report_key = next(k for k in dests if k.endswith("report"))
    stations_key = next(k for k in dests if k.endswith("stations"))
    ssm_key = next(k for k in dests if k.endswith("ssm_1km"))
    res = processing.run(model.id(), {"size_km": 72, "days": 5, "seed": 2, ssm_key: str(tmp_path / "ssm"),
                                      report_key: str(tmp_path / "report.html"),
                                      stations_key: str(tmp_path / "stations.gpkg")})
    assert Path(res[report_key]).exists()
    layer = QgsVectorLayer(res[stations_key], "stations", "ogr")
    assert layer.isValid() and layer.featureCount() >= 1


def test_model_run_loads_only_its_outputs_in_one_group(alg_ready, tmp_path):
    """A model run used to load six intermediate layers from temporary folders, ungrouped;
    now only the model's outputs, in a group named after the model, stations on top."""
    from qgis import processing
    from qgis.core import QgsProcessingContext, QgsProcessingOutputLayerDefinition, QgsProject
    from ssm_testing import handle_results

    model = next(a for a in alg_ready.providerById("ssm").algorithms() if a.group() == "5 - Workflows").create()
    dests = {p.name() for p in model.destinationParameterDefinitions()}
    key = {k.rsplit(":", 1)[-1]: k for k in dests}
    params = {"size_km": 72, "days": 5, "seed": 2, key["ssm_1km"]: str(tmp_path / "ssm"),
              key["report"]: str(tmp_path / "report.html"),
              # as the dialog passes it with "Open output file after running" ticked
              key["stations"]: QgsProcessingOutputLayerDefinition(str(tmp_path / "stations.gpkg"), QgsProject.instance())}
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    try:
        processing.run(model, params, context=context)
        loaded = list(context.layersToLoadOnCompletion())
        assert all(str(tmp_path) in p for p in loaded), loaded  # nothing from temporary folders
        assert handle_results(model, context, None, params)
        root = QgsProject.instance().layerTreeRoot()
        group = root.findGroup(model.displayName())
        assert group is not None
        assert [c.name() for c in group.children()] == ["stations", "Soil moisture"]
    finally:
        QgsProject.instance().removeAllMapLayers()
        QgsProject.instance().layerTreeRoot().removeAllChildren()
