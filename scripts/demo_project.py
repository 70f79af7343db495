#!/usr/bin/env python3
"""Write ``<demo>/demo.qgz``: the demo run as a QGIS project, laid out as the plugin lays out
the outputs of a run (one group, temporal day layers styled from the plugin's QML, flags
off), with the scene's stations and the validated stations on top.

    python scripts/demo_project.py build/demo

Run by ``scripts/demo.py`` after the tools (needs QGIS; headless).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(demo: Path) -> Path:
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsProcessingContext,
        QgsProject,
        QgsRasterLayer,
        QgsVectorLayer,
    )

    from ssm_downscaling.processing_provider.outputs import MAX_DAYS_LOADED, RunGroupPostProcessor, stations_csv_layer
    from ssm_downscaling.ssm_plugin.temporal import series_extent

    project = QgsProject.instance()
    project.clear()
    context = QgsProcessingContext()
    context.setProject(project)
    group = "Demo run (sample scene, GWR)"

    def add(layer, series, kind, day=None):
        if not layer.isValid():
            return
        if project.addMapLayer(layer) is None:
            return
        RunGroupPostProcessor(group, series, kind, day).postProcessLayer(layer, context, None)

    from ssm_downscaling.core.series import date_from_name

    for folder, kind, title in (("ssm_1km", "ssm", "Soil moisture"), ("ssm_uncertainty", "ssm_uncertainty", "Uncertainty"),
                                ("ssm_flags", "ssm_flags", "Flags"), ("lst_allweather", "lst", "All-weather LST"),
                                ("lst_flags", "lst_flags", "LST flags")):
        for f in sorted((demo / folder).glob("*.tif"))[-MAX_DAYS_LOADED:]:
            day = date_from_name(f.name)
            add(QgsRasterLayer(str(f), f"{title} {day}", "gdal"), title, kind, day)
    stations = demo / "scene" / "stations.csv"
    if stations.exists():
        add(stations_csv_layer(stations, "Stations (CSV)"), None, "stations_csv")
    validated = demo / "validation" / "stations.gpkg"
    if validated.exists():
        add(QgsVectorLayer(str(validated), "Validated stations (ubRMSD)", "ogr"), None, "validation_stations")
    dem = demo / "scene" / "inputs" / "dem.tif"
    if dem.exists():
        add(QgsRasterLayer(str(dem), "Elevation", "gdal"), None, "dem")
    first = next(iter(project.mapLayers().values()), None)
    if first is not None:
        project.setCrs(QgsCoordinateReferenceSystem(first.crs()))
    rng = series_extent(project)
    if rng is not None:
        project.timeSettings().setTemporalRange(rng)
    out = demo / "demo.qgz"
    if not project.write(str(out)):
        raise SystemExit(f"could not write {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    demo = Path(args[0] if args else ROOT / "build" / "demo").resolve()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(ROOT.parent))
    print(build(demo))
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
