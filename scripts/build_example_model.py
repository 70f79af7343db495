#!/usr/bin/env python3
"""Write the example Graphical Modeler workflow that chains the plugin's tools:

    sample scene -> gap-fill LST -> downscale SSM (GWR) -> validate against stations

to ``processing_provider/models/scene_to_validation.model3``. Open it in the Modeler
(Processing Toolbox > Models > Open existing model) to see how the tools connect; swap the
scene step for your own folders to run it on real data. Needs QGIS (run with the
Makefile's environment: ``build/venv/bin/python scripts/build_example_model.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "processing_provider" / "models" / "scene_to_validation.model3"


def build():
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterNumber,
    )
    from qgis.PyQt.QtCore import QPointF

    from ssm_downscaling.processing_provider.compat import NUMBER_DOUBLE, NUMBER_INTEGER

    model = QgsProcessingModelAlgorithm("Sample scene to validated 1 km soil moisture", "5 - Workflows", "workflows")
    model.setHelpContent({
        "ALG_DESC": "Creates the sample scene, fills its LST cloud gaps, downscales the coarse soil moisture to "
                    "1 km by GWR and validates the result, the coarse input and the truth against the scene's "
                    "stations. Replace the first step by your own folders to run the same chain on real data.",
    })

    def number(name: str, label: str, default: float, minimum: float, integer: bool = True, y: float = 60):
        p = QgsProcessingParameterNumber(
            name, label, NUMBER_INTEGER if integer else NUMBER_DOUBLE,
            default, minValue=minimum,
        )
        mp = QgsProcessingModelParameter(name)
        mp.setPosition(QPointF(120, y))
        model.addModelParameter(p, mp)

    number("size_km", "Scene size (km)", 144, 36, integer=False, y=60)
    number("days", "Number of days", 20, 1, y=120)
    number("seed", "Random seed", 1, 0, y=180)
    number("min_obs", "Minimum matched days per station (at most the number of days)", 10, 3, y=240)

    def child(alg: str, description: str, x: float, y: float) -> QgsProcessingModelChildAlgorithm:
        c = QgsProcessingModelChildAlgorithm(alg)
        c.generateChildId(model)
        c.setDescription(description)
        c.setPosition(QPointF(x, y))
        return c

    def add(c: QgsProcessingModelChildAlgorithm) -> None:
        """Add a child with every other input at its default, as the Modeler does."""
        from qgis.core import QgsApplication

        alg = QgsApplication.processingRegistry().algorithmById(c.algorithmId())
        if alg is None:
            raise SystemExit(f"{c.algorithmId()} is not available: is the plugin's provider registered?")
        for pdef in alg.parameterDefinitions():
            if pdef.isDestination() or pdef.name() in c.parameterSources():
                continue
            if pdef.defaultValue() is not None:
                c.addParameterSources(pdef.name(), static(pdef.defaultValue()))
        model.addChildAlgorithm(c)

    def static(value):
        return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]

    def param(name: str):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    def out(child_alg: QgsProcessingModelChildAlgorithm, name: str):
        return [QgsProcessingModelChildParameterSource.fromChildOutput(child_alg.childId(), name)]

    scene = child("ssm:samplescene", "Create the sample scene", 420, 120)
    scene.addParameterSources("PLACE", static(0))  # tibet
    scene.addParameterSources("SIZE_KM", param("size_km"))
    scene.addParameterSources("DAYS", param("days"))
    scene.addParameterSources("SEED", param("seed"))
    add(scene)

    lst = child("ssm:gapfilllst", "Gap-fill LST", 420, 260)
    lst.addParameterSources("INPUT_LST", out(scene, "LST"))
    lst.addParameterSources("INPUT_BACKGROUND", out(scene, "LST_BACKGROUND"))
    lst.addParameterSources("INPUT_DEM", out(scene, "DEM"))
    lst.addParameterSources("INPUT_NDVI", out(scene, "NDVI"))
    add(lst)

    ssm = child("ssm:downscalessm", "Downscale soil moisture (GWR)", 420, 400)
    ssm.addParameterSources("INPUT_SSM", out(scene, "SSM_COARSE"))
    ssm.addParameterSources("INPUT_LST", out(lst, "OUTPUT_LST"))
    ssm.addParameterSources("INPUT_LST_FLAGS", out(lst, "OUTPUT_FLAGS"))
    ssm.addParameterSources("INPUT_NDVI", out(scene, "NDVI"))
    ssm.addParameterSources("INPUT_ALBEDO", out(scene, "ALBEDO"))
    ssm.addParameterSources("INPUT_DEM", out(scene, "DEM"))
    ssm.addParameterSources("REFERENCE", out(scene, "DEM"))
    ssm.addParameterSources("METHOD", static(0))  # gwr
    ssm_out = QgsProcessingModelOutput("ssm_1km", "1 km soil moisture")
    ssm_out.setChildOutputName("OUTPUT_SSM")
    ssm.setModelOutputs({"ssm_1km": ssm_out})
    add(ssm)

    val = child("ssm:validatestations", "Validate against the stations", 420, 540)
    val.addParameterSources("PRODUCT", out(ssm, "OUTPUT_SSM"))
    val.addParameterSources("PRODUCT_NAME", static("downscaled 1 km"))
    val.addParameterSources("PRODUCT_2", out(scene, "SSM_COARSE"))
    val.addParameterSources("PRODUCT_2_NAME", static("coarse input"))
    val.addParameterSources("PRODUCT_3", out(scene, "TRUTH_SSM"))
    val.addParameterSources("PRODUCT_3_NAME", static("truth"))
    val.addParameterSources("STATIONS", out(scene, "STATIONS"))
    val.addParameterSources("FLAGS", out(ssm, "OUTPUT_FLAGS"))
    # a short run still validates: never ask for more matched days than the run has
    val.addParameterSources("MIN_OBS", [QgsProcessingModelChildParameterSource.fromExpression(
        "max(3, min(@min_obs, @days))")])
    outputs = {}
    for name, child_output, label in (("report", "OUTPUT_HTML", "Validation report"),
                                      ("stations", "OUTPUT", "Stations with metrics")):
        o = QgsProcessingModelOutput(name, label)
        o.setChildOutputName(child_output)
        outputs[name] = o
    val.setModelOutputs(outputs)
    add(val)
    model.updateDestinationParameters()
    return model


def main() -> int:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(ROOT.parent))
    from qgis.core import QgsApplication as _Q

    from ssm_downscaling.processing_provider.provider import SsmProvider

    provider = SsmProvider()
    _Q.processingRegistry().addProvider(provider)
    model = build()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    if not model.toFile(str(TARGET)):
        raise SystemExit(f"could not write {TARGET}")
    print(TARGET)
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
