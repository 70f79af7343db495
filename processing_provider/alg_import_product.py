"""ssm:importproduct - import satellite or reanalysis product files into a daily series."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.readers.products import PLATFORM_RULES, PRODUCTS, RESAMPLINGS
from .base import SsmAlgorithm
from .compat import DATETIME_DATE, FILE_FOLDER, FLAG_ADVANCED, FLAG_OPTIONAL, NUMBER_DOUBLE, NUMBER_INTEGER, SOURCE_FILE
from .outputs import load_series_on_completion, run_group_name, write_sidecars

PRODUCT_KEYS = list(PRODUCTS)
GRID_MODES = ["native", "reference", "extent"]
LPRM_BANDS = ["c1", "c2", "x"]
PASSES = ["any", "D", "A"]
LST_QC = ["good", "error_1k", "error_2k", "error_3k"]
ALBEDO_KINDS = ["blue", "white", "black"]
MOD09_OUTPUTS = ["ndvi", "albedo"]
REANALYSIS_VARIABLES = ["skt", "t2m", "AvgSurfT_inst", "swvl1"]
OVERPASSES = ["terra", "aqua", "custom"]
TIME_METHODS = ["nearest", "linear"]
GENERIC_UNITS = ["m3/m3", "percent", "K", "celsius", "1"]
SMAP_PASSES = ["AM", "PM"]

HELP = """Reads the files the agencies distribute and writes a daily series (one GeoTIFF per day, <prefix>_YYYY-MM-DD.tif, float32, nodata -9999, date in the DATE metadata item) on the grid you choose, in SI units with fill and quality masks applied, ready for the other tools.

<b>Products</b> (PRODUCT, by name or number):
<ul>
<li><b>lprm</b>: AMSR-E/AMSR2 LPRM L3 daily netCDF (NASA GES DISC): band C1/C2/X (LPRM_BAND), percent to m3/m3; stored (lon, lat) - transposed here; the pass (A 13:30, D 01:30) comes from the name; PASS keeps one, or both with the descending value first. Tested on a real AMSR2 file.</li>
<li><b>jaxa</b>: JAXA AMSR-E/AMSR2 L3 SMC HDF5 ('Geophysical Data' x SCALE FACTOR, percent; 0.1 or 0.25 degree). <i>Tested on a file written in the documented layout (no real sample here).</i></li>
<li><b>smap</b>: SMAP L3 SPL3SMP (36 km) / SPL3SMP_E (9 km) HDF5 on EASE-Grid 2.0, AM or PM (SMAP_OVERPASS), retrieval quality bit. <i>Tested on a file written in the documented layout.</i></li>
<li><b>esa_cci</b>: ESA CCI SM / C3S daily netCDF (sm, only flag 0 by default). Tested on real files.</li>
<li><b>generic</b>: any GDAL raster with a date in its name (GENERIC_UNITS says its units).</li>
<li><b>mod11_lst</b>: MOD11A1/MYD11A1 LST day or night (LST_NIGHT), QC: good only or LST error at most 1/2/3 K (LST_QC). Tested on real tiles.</li>
<li><b>mod11_lst_diff</b>: the day minus night LST of MOD11A1/MYD11A1 (the day-night difference predictor).</li>
<li><b>mod13_ndvi</b>: MOD13A2/MYD13A2 NDVI (count/10000, fill -3000, pixel reliability); the 16-day composite is written for every day it covers (COMPOSITE_AS_DAILY). Tested on a real tile.</li>
<li><b>mcd43_albedo</b>: MCD43A3 shortwave albedo, white-, black-sky or blue-sky (the blend with DIFFUSE_FRACTION). <i>Tested on a file written in the documented layout.</i></li>
<li><b>mod09</b>: MOD09GA/MOD09A1 reflectance to NDVI or shortwave albedo (Liang 2001, RSE 76:213-238: 0.160 b1 + 0.291 b2 + 0.243 b3 + 0.116 b4 + 0.112 b5 + 0.081 b7 - 0.0015), clear pixels from the state bits. <i>Tested on a file written in the documented layout.</i></li>
<li><b>ts_cells</b>: time-series cell files (NNNN.nc, locations x time, as QA4SM and pytesmo deliver ESA CCI, SMAP L3, SMOS-IC, GLDAS Noah): daily means per location placed in their cells of the product's own grid (0.25 degree or EASE-Grid 2.0 36/25/9 km, found from the locations); GLDAS SoilMoi0_10cm kg m-2 / 100 = m3/m3; quality flags with ESA_FLAG_ZERO_ONLY. Tested on the real QA4SM samples.</li>
<li><b>reanalysis</b>: ERA5/ERA5-Land/ERA-Interim netCDF or GRIB (skt or t2m), GLDAS Noah (AvgSurfT_inst): for each day, per pixel column, the time step nearest the overpass (Terra 10:30, Aqua 13:30 local solar time = UTC + longitude/15 h) or linear in time; 0-360 longitudes and packed values handled. Tested on real ERA5 netCDF and ERA-Interim netCDF/GRIB files.</li>
</ul>
MODIS tiles of one day are mosaicked; Terra and Aqua files are kept apart or combined by PLATFORM_RULE. Every reader checks that its values are plausible for their units and names the file and variable when not.

<b>Inputs</b>: INPUT_FILES (one or more files) and/or INPUT_FOLDER searched recursively for PATTERN (e.g. MOD11A1*.hdf). START_DATE..END_DATE limits the days written.

<b>Target grid</b> (GRID_MODE): <b>native</b> (the product's own grid, cropped to EXTENT when one is given - the coarse cells stay as they are, which is what ssm:downscalessm wants of a coarse product; MODIS: the union of the tiles given), <b>reference</b> (the grid of REFERENCE, e.g. your 1 km DEM), or <b>extent</b> (EXTENT in TARGET_CRS at RESOLUTION in that CRS's units). Resampling (RESAMPLING auto): average when the target is much coarser than a MODIS/reanalysis product, nearest for retrievals and MODIS, bilinear for reanalysis.

<b>Bad input</b>: a file of another product, all fill, outside the target or truncated is skipped with its reason; the rest imports. DAYS, FILES_READ and FILES_SKIPPED count them; SUMMARY lists the skipped files and why."""


#: the style (processing_provider/styles/<kind>.qml) of each product's series
STYLE_OF_PRODUCT = {"lprm": "ssm", "esa_cci": "ssm", "jaxa": "ssm", "smap": "ssm", "ts_cells": "ssm", "generic": "ssm",
                    "mod11_lst": "lst"}


class ImportProductAlgorithm(SsmAlgorithm):
    NAME = "importproduct"
    DISPLAY_NAME = "Import satellite or reanalysis product"
    GROUP = "1 - Inputs"
    GROUP_ID = "inputs"
    TAGS = ("import,AMSR2,AMSR-E,LPRM,JAXA,SMAP,ESA CCI,C3S,MODIS,MOD11A1,MYD11A1,MOD13A2,MCD43A3,MOD09GA,"
            "ERA5,ERA-Interim,GLDAS,netCDF,HDF,GRIB,soil moisture,LST,NDVI,albedo")
    HELP = HELP

    PRODUCT = "PRODUCT"
    INPUT_FILES = "INPUT_FILES"
    INPUT_FOLDER = "INPUT_FOLDER"
    PATTERN = "PATTERN"
    GRID_MODE = "GRID_MODE"
    REFERENCE = "REFERENCE"
    EXTENT = "EXTENT"
    TARGET_CRS = "TARGET_CRS"
    RESOLUTION = "RESOLUTION"
    START_DATE = "START_DATE"
    END_DATE = "END_DATE"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None) -> None:
        from qgis.core import QgsProcessingParameterMultipleLayers

        self.addParameter(self._enum(self.PRODUCT, "Product", PRODUCT_KEYS, "lprm"))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUT_FILES, self.tr("Input files"), SOURCE_FILE, optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT_FOLDER, self.tr("or a folder of input files"), behavior=FILE_FOLDER,
            optional=True))
        self.addParameter(QgsProcessingParameterString(self.PATTERN, self.tr("File name pattern in the folder"),
                                                       defaultValue="*", optional=True))
        self.addParameter(self._enum(self.GRID_MODE, "Target grid", GRID_MODES, "native"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE, self.tr("Reference raster (grid = reference)"),
                                                            optional=True))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent (grid = extent; crops the native grid)"), optional=True))
        self.addParameter(QgsProcessingParameterCrs(self.TARGET_CRS, self.tr("CRS of the target grid (grid = extent)"),
                                                    optional=True))
        number = QgsProcessingParameterNumber
        self.addParameter(number(self.RESOLUTION, self.tr("Resolution in the target CRS's units (grid = extent)"),
                                 NUMBER_DOUBLE, None, optional=True, minValue=0.0))
        for name, label in ((self.START_DATE, "Start date"), (self.END_DATE, "End date")):
            self.addParameter(QgsProcessingParameterDateTime(name, self.tr(label),
                                                             type=DATETIME_DATE, optional=True))
        advanced = [
            self._enum("LPRM_BAND", "LPRM: band (c1 6.9 GHz, c2 7.3 GHz, x 10.7 GHz)", LPRM_BANDS, "c1"),
            self._enum("PASS", "LPRM/JAXA: pass (any: descending first; D 01:30 night; A 13:30 day)", PASSES, "any"),
            number("MAX_ERROR", self.tr("LPRM: maximum retrieval error (m3/m3; empty = keep all)"), NUMBER_DOUBLE,
                   None, optional=True, minValue=0.0),
            QgsProcessingParameterBoolean("ESA_FLAG_ZERO_ONLY", self.tr("ESA CCI: only pixels with flag 0"), True),
            number("MAX_UNCERTAINTY", self.tr("ESA CCI: maximum sm_uncertainty (m3/m3; empty = keep all)"),
                   NUMBER_DOUBLE, None, optional=True, minValue=0.0),
            self._enum("SMAP_OVERPASS", "SMAP: overpass (AM 06:00, PM 18:00)", SMAP_PASSES, "AM"),
            QgsProcessingParameterBoolean("SMAP_RECOMMENDED_ONLY", self.tr("SMAP: recommended quality only"), True),
            self._enum("GENERIC_UNITS", "Generic raster: units of its values", GENERIC_UNITS, "m3/m3"),
            QgsProcessingParameterBoolean("LST_NIGHT", self.tr("MODIS LST: night instead of day"), False),
            self._enum("LST_QC", "MODIS LST: quality (good only, or LST error at most 1/2/3 K)", LST_QC, "error_2k"),
            number("NDVI_MAX_RELIABILITY", self.tr("MOD13: worst pixel reliability kept (0 good, 1 marginal)"),
                   NUMBER_INTEGER, 1, minValue=0, maxValue=1),
            QgsProcessingParameterBoolean("COMPOSITE_AS_DAILY",
                                          self.tr("MOD13: write each 16-day composite for every day it covers"), True),
            self._enum("ALBEDO_KIND", "MCD43A3: albedo (blue-sky blend, white-sky, black-sky)", ALBEDO_KINDS, "blue"),
            number("DIFFUSE_FRACTION", self.tr("MCD43A3: diffuse share of the irradiance for blue-sky albedo"),
                   NUMBER_DOUBLE, 0.2, minValue=0.0, maxValue=1.0),
            QgsProcessingParameterBoolean("FULL_INVERSION_ONLY", self.tr("MCD43A3: full BRDF inversions only"), False),
            self._enum("MOD09_OUTPUT", "MOD09: output (NDVI or Liang 2001 shortwave albedo)", MOD09_OUTPUTS, "ndvi"),
            QgsProcessingParameterBoolean("CLOUD_MASK", self.tr("MOD09: keep clear pixels only (state bits)"), True),
            self._enum("PLATFORM_RULE", "MODIS: Terra and Aqua files of a day", list(PLATFORM_RULES),
                       "terra_then_aqua"),
            self._enum("REANALYSIS_VARIABLE", "Reanalysis: variable", REANALYSIS_VARIABLES, "skt"),
            self._enum("OVERPASS", "Reanalysis: overpass (Terra 10:30, Aqua 13:30 local solar time, or custom)",
                       OVERPASSES, "terra"),
            number("OVERPASS_HOURS", self.tr("Reanalysis: custom overpass (local solar time, hours)"), NUMBER_DOUBLE,
                   10.5, minValue=0.0, maxValue=23.99),
            self._enum("TIME_METHOD", "Reanalysis: nearest step or linear in time", TIME_METHODS, "nearest"),
            number("MAX_GAP_HOURS", self.tr("Reanalysis: largest distance from the overpass to a step (hours)"),
                   NUMBER_DOUBLE, 6.0, minValue=0.1, maxValue=48.0),
            self._enum("RESAMPLING", "Resampling onto the target grid", list(RESAMPLINGS), "auto"),
            QgsProcessingParameterString("PREFIX", self.tr("Output file prefix (empty = the product's)"), "",
                                         optional=True),
        ]
        for p in advanced:
            p.setFlags(p.flags() | FLAG_ADVANCED | FLAG_OPTIONAL)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Daily series folder")))
        self.addOutput(QgsProcessingOutputNumber("DAYS", self.tr("Days written")))
        self.addOutput(QgsProcessingOutputNumber("FILES_READ", self.tr("Files read")))
        self.addOutput(QgsProcessingOutputNumber("FILES_SKIPPED", self.tr("Files skipped")))
        self.addOutput(QgsProcessingOutputString("SUMMARY", self.tr("Summary")))

    def _enum(self, name: str, label: str, options: list[str], default: str) -> QgsProcessingParameterEnum:
        p = QgsProcessingParameterEnum(name, self.tr(label), options=options, defaultValue=default)
        p.setUsesStaticStrings(True)
        return p

    @staticmethod
    def enum_value(parameters: dict, name: str, options: list[str], default: str) -> str | None:
        """An enum parameter given by name or by index (qgis_process passes numbers); None when invalid."""
        v = parameters.get(name)
        if v in (None, ""):
            return default
        if isinstance(v, (list, tuple)) and len(v) == 1:
            v = v[0]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            i = int(v)
            return options[i] if 0 <= i < len(options) else None
        s = str(v).strip()
        if s.isdigit():
            i = int(s)
            return options[i] if i < len(options) else None
        return s if s in options else None

    ENUMS = {
        "PRODUCT": (PRODUCT_KEYS, "lprm"), "GRID_MODE": (GRID_MODES, "native"), "LPRM_BAND": (LPRM_BANDS, "c1"), "PASS": (PASSES, "any"),
        "SMAP_OVERPASS": (SMAP_PASSES, "AM"), "GENERIC_UNITS": (GENERIC_UNITS, "m3/m3"),
        "LST_QC": (LST_QC, "error_2k"), "ALBEDO_KIND": (ALBEDO_KINDS, "blue"), "MOD09_OUTPUT": (MOD09_OUTPUTS, "ndvi"),
        "PLATFORM_RULE": (list(PLATFORM_RULES), "terra_then_aqua"),
        "REANALYSIS_VARIABLE": (REANALYSIS_VARIABLES, "skt"), "OVERPASS": (OVERPASSES, "terra"),
        "TIME_METHOD": (TIME_METHODS, "nearest"), "RESAMPLING": (list(RESAMPLINGS), "auto"),
    }

    def checkParameterValues(self, parameters, context):
        for name, (options, default) in self.ENUMS.items():
            if self.enum_value(parameters, name, options, default) is None:
                return False, self.tr(f"{name}: {parameters.get(name)!r} is not one of {', '.join(options)} "
                                      f"(or their numbers 0..{len(options) - 1})")
        if parameters.get(self.INPUT_FILES) in (None, "", []) and parameters.get(self.INPUT_FOLDER) in (None, ""):
            return False, self.tr("Give INPUT_FILES or INPUT_FOLDER")
        mode = self.enum_value(parameters, self.GRID_MODE, GRID_MODES, "native")
        if mode == "reference" and parameters.get(self.REFERENCE) in (None, ""):
            return False, self.tr("GRID_MODE reference needs a REFERENCE raster")
        if mode == "extent" and any(parameters.get(k) in (None, "") for k in (self.EXTENT, self.RESOLUTION)):
            return False, self.tr("GRID_MODE extent needs EXTENT and RESOLUTION (and TARGET_CRS, default the extent's)")
        # QGIS checks static-string enums by name only: hand it the names
        named = dict(parameters)
        for name, (options, default) in self.ENUMS.items():
            if parameters.get(name) not in (None, ""):
                named[name] = self.enum_value(parameters, name, options, default)
        return super().checkParameterValues(named, context)

    # -------------------------------------------------------------------------------
    def _optional_number(self, parameters, name, context) -> float | None:
        if parameters.get(name) in (None, ""):
            return None
        return self.parameterAsDouble(parameters, name, context)

    def _clip(self, parameters, context):
        """The EXTENT as a one-cell grid (native mode crops to it), or None."""
        from ..core.grid import Grid

        if parameters.get(self.EXTENT) in (None, ""):
            return None
        crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        if crs is None or not crs.isValid():
            crs = QgsCoordinateReferenceSystem("EPSG:4326")
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
        if rect.isEmpty():
            return None
        return Grid.from_bounds(crs.toWkt(), (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()),
                                (rect.width(), rect.height()))

    def _grid(self, parameters, context, mode: str):
        from ..core.grid import Grid

        if mode == "native":
            return None
        if mode == "reference":
            layer = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
            if layer is None:
                raise QgsProcessingException(self.tr(f"REFERENCE: cannot open {parameters.get(self.REFERENCE)!r}"))
            return Grid.from_raster(layer.source())
        crs = self.parameterAsCrs(parameters, self.TARGET_CRS, context)
        if crs is None or not crs.isValid():
            crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        if crs is None or not crs.isValid():
            crs = QgsCoordinateReferenceSystem("EPSG:4326")
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
        res = self.parameterAsDouble(parameters, self.RESOLUTION, context)
        if rect.isEmpty() or res <= 0:
            raise QgsProcessingException(self.tr("EXTENT is empty or RESOLUTION is not positive"))
        return Grid.from_bounds(crs.toWkt(), (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()), res)

    def processAlgorithm(self, parameters, context, feedback):
        from ..core.readers import ImportOptions, import_product, list_inputs

        e = {name: self.enum_value(parameters, name, opts, default) for name, (opts, default) in self.ENUMS.items()}
        files = [str(f) for f in (self.parameterAsFileList(parameters, self.INPUT_FILES, context) or []) if str(f).strip()]
        folder = self.parameter_path(parameters, self.INPUT_FOLDER, context, optional=True)
        pattern = self.parameterAsString(parameters, self.PATTERN, context) or "*"
        start, end = self.date_range(parameters, self.START_DATE, self.END_DATE, context)
        out = self.parameterAsString(parameters, self.OUTPUT, context)
        overpass = {"terra": 10.5, "aqua": 13.5}.get(e["OVERPASS"]) or self.parameterAsDouble(
            parameters, "OVERPASS_HOURS", context)
        with self.core_call(feedback):
            inputs = list_inputs(files + ([folder] if folder else []), pattern)
            grid = self._grid(parameters, context, e["GRID_MODE"])
            options = ImportOptions(
                product=e["PRODUCT"], lprm_band=e["LPRM_BAND"], overpass_pass=e["PASS"],
                max_error=self._optional_number(parameters, "MAX_ERROR", context),
                esa_flag_zero_only=self.parameterAsBool(parameters, "ESA_FLAG_ZERO_ONLY", context),
                max_uncertainty=self._optional_number(parameters, "MAX_UNCERTAINTY", context),
                smap_overpass=e["SMAP_OVERPASS"],
                smap_recommended_only=self.parameterAsBool(parameters, "SMAP_RECOMMENDED_ONLY", context),
                generic_units=e["GENERIC_UNITS"],
                lst_night=self.parameterAsBool(parameters, "LST_NIGHT", context), lst_qc=e["LST_QC"],
                ndvi_max_reliability=self.parameterAsInt(parameters, "NDVI_MAX_RELIABILITY", context),
                composite_as_daily=self.parameterAsBool(parameters, "COMPOSITE_AS_DAILY", context),
                albedo_kind=e["ALBEDO_KIND"],
                diffuse_fraction=self.parameterAsDouble(parameters, "DIFFUSE_FRACTION", context),
                full_inversion_only=self.parameterAsBool(parameters, "FULL_INVERSION_ONLY", context),
                mod09_output=e["MOD09_OUTPUT"], cloud_mask=self.parameterAsBool(parameters, "CLOUD_MASK", context),
                platform_rule=e["PLATFORM_RULE"], reanalysis_variable=e["REANALYSIS_VARIABLE"],
                overpass_hours=overpass, time_method=e["TIME_METHOD"],
                max_gap_hours=self.parameterAsDouble(parameters, "MAX_GAP_HOURS", context),
                resampling=e["RESAMPLING"], prefix=self.parameterAsString(parameters, "PREFIX", context) or None,
            )
            feedback.pushInfo(self.tr(f"{options.label}: {len(inputs)} file(s); target grid: "
                                      f"{'native' if grid is None else repr(grid)}"))

            def progress(p: float) -> None:
                feedback.setProgress(p)

            clip = self._clip(parameters, context) if e["GRID_MODE"] == "native" else None
            summary = import_product(inputs, out, options, grid, start, end, progress=progress,
                                     is_cancelled=feedback.isCanceled, clip=clip)
        for f, why in summary.skipped:
            feedback.reportError(self.tr(f"skipped {Path(f).name}: {why}"), fatalError=False)
        if summary.written:
            kind = STYLE_OF_PRODUCT.get(options.product, options.out_prefix)
            group = run_group_name(context, self.tr("Imported"), out)
            write_sidecars(summary.written, kind)
            load_series_on_completion(context, summary.written, kind, group, options.out_prefix)
        return {
            self.OUTPUT: out,
            "DAYS": len(summary.written),
            "FILES_READ": len(summary.files_read),
            "FILES_SKIPPED": len(summary.skipped),
            "SUMMARY": summary.text(),
        }
