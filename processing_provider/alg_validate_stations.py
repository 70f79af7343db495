"""ssm:validatestations - validate daily soil moisture products against in-situ stations."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .base import SsmAlgorithm, enum_parameter
from .compat import (
    DATETIME_DATE,
    FAST_INSERT,
    FILE_FILE,
    FILE_FOLDER,
    NUMBER_DOUBLE,
    NUMBER_INTEGER,
    SOURCE_VECTOR_POINT,
    WKB_POINT,
    field_type,
)
from .outputs import RunGroupPostProcessor, run_group_name

#: extra product slots after the main product
EXTRA_PRODUCTS = 3
FLAG_TYPES = {
    "auto": "Automatic (from the legend)",
    "ssm": "Soil moisture flags (0/1 clear, 2/3 cloudy)",
    "lst": "LST flags or cloud mask (0 clear, 1 cloudy)",
}

HELP = """Validates one to four daily soil moisture products against in-situ stations and reports, per station and product, the metrics of pytesmo (the QA4SM validation service): R (Pearson) with its p-value p_R, BIAS = mean(product) - mean(station), RMSD, urmsd (ubRMSD = sqrt(RMSD² - BIAS²)) and n_obs, with analytical 95 % confidence intervals for R (Fisher z), BIAS (Student t) and urmsd (chi-square), as pytesmo computes them; then their station mean and median, for all days and, when a flag folder is given, for clear-sky and cloudy days separately.

<b>Products</b>: folders of daily single-band rasters (any CRS and grid, the date in each file name as YYYY-MM-DD, YYYYMMDD or YYYYDDD), e.g. the 1 km downscaled SSM, the coarse input, or any other product. The first is the main product: the layer is styled by its ubRMSD and the best/worst stations are chosen by it. Names default to the folder names. The product value is the pixel containing the station, or the mean of the valid pixels of a WINDOW x WINDOW window centred on it (odd size). Only the pixels around the stations are read.

<b>Stations</b>: either a CSV with the columns station_id, lon, lat (WGS84 degrees), date, sm (m³/m³), optional depth (m), network, flag (other columns are ignored; dates or date-times, sub-daily values are averaged per day; unreadable rows are skipped and listed with their line numbers), or an ISMN folder of .stm files (both ISMN layouts; only soil moisture sensors whose depths lie within the depth range, and only values whose quality flags are all among the accepted ones, G = good by default). Give one of the two.

<b>Matching</b>: a station-day counts when the station and the product both have a value. With "Match on the days all products have" (default), every product is evaluated on the same station-days, so the numbers compare like with like. A station enters the averages with at least MIN_OBS matched days; stations with fewer, stations outside every raster and stations without values in the period are listed in warnings with their ids. An error is raised when no station can be validated.

<b>Clear-sky / cloudy</b>: read from the flag folder at the station's pixel. SSM flags of the downscaling: 0 coarse observed and 1 seam-filled (LST observed) = clear-sky; 2 LST gap-filled under cloud and 3 both = cloudy; 255 = unknown. LST flags or a cloud mask: 0 = clear-sky, 1 = gap-filled / cloud = cloudy. FLAG_TYPE "auto" recognises SSM flags by the legend in the band description or by values 2/3; otherwise the 0/1 rule is used. Unknown days count in "all" only.

<b>Outputs</b>: a point layer of the stations (WGS84) with, for product k, the fields p&lt;k&gt;_name, p&lt;k&gt;_n_obs, p&lt;k&gt;_R, p&lt;k&gt;_p_R, p&lt;k&gt;_BIAS, p&lt;k&gt;_RMSD, p&lt;k&gt;_urmsd and the CIs, and with flags p&lt;k&gt;_clear_* and p&lt;k&gt;_cloudy_*; styled by p1_urmsd. A CSV table with one row per station, product and subset (all / clear / cloudy) and every metric. An HTML report with the station-average table (all / clear-sky / cloudy), product-vs-station scatter plots, a map of ubRMSD, the time series of the best and the worst station and the per-station table; its PNG plots are written next to it (&lt;name&gt;_scatter.png, _map.png, _timeseries.png), with &lt;name&gt;_summary.json holding the station averages of every product and subset (output OUTPUT_SUMMARY). Numeric outputs: the main product's station-mean ubRMSD, R and bias, and the number of validated stations."""


class ValidateStationsAlgorithm(SsmAlgorithm):
    NAME = "validatestations"
    DISPLAY_NAME = "Validate against stations"
    GROUP = "4 - Validation"
    GROUP_ID = "validation"
    TAGS = "validation,in-situ,ISMN,station,ubRMSD,RMSD,bias,correlation,pytesmo,QA4SM,soil moisture"
    HELP = HELP

    PRODUCT = "PRODUCT"
    PRODUCT_NAME = "PRODUCT_NAME"
    STATIONS = "STATIONS"
    ISMN = "ISMN"
    FLAGS = "FLAGS"
    FLAG_TYPE = "FLAG_TYPE"
    START_DATE = "START_DATE"
    END_DATE = "END_DATE"
    DEPTH_MIN = "DEPTH_MIN"
    DEPTH_MAX = "DEPTH_MAX"
    QUALITY_FLAGS = "QUALITY_FLAGS"
    WINDOW = "WINDOW"
    MIN_OBS = "MIN_OBS"
    COMMON_DAYS = "COMMON_DAYS"
    OUTPUT = "OUTPUT"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    OUTPUT_HTML = "OUTPUT_HTML"

    def initAlgorithm(self, config=None) -> None:
        folder = FILE_FOLDER
        self.addParameter(QgsProcessingParameterFile(self.PRODUCT, self.tr("Product folder (daily rasters)"),
                                                     behavior=folder))
        self.addParameter(QgsProcessingParameterString(self.PRODUCT_NAME, self.tr("Product name"), optional=True))
        for k in range(2, EXTRA_PRODUCTS + 2):
            self.addParameter(QgsProcessingParameterFile(f"PRODUCT_{k}", self.tr(f"Product {k} folder"),
                                                         behavior=folder, optional=True))
            self.addParameter(QgsProcessingParameterString(f"PRODUCT_{k}_NAME", self.tr(f"Product {k} name"),
                                                           optional=True))
        self.addParameter(QgsProcessingParameterFile(self.STATIONS, self.tr("Station CSV (or give an ISMN folder)"),
                                                     behavior=FILE_FILE,
                                                     fileFilter="CSV files (*.csv *.txt);;All files (*.*)",
                                                     optional=True))
        self.addParameter(QgsProcessingParameterFile(self.ISMN, self.tr("ISMN folder of .stm files (or give a CSV)"),
                                                     behavior=folder, optional=True))
        self.addParameter(QgsProcessingParameterFile(self.FLAGS, self.tr("Flag folder for clear-sky / cloudy split"),
                                                     behavior=folder, optional=True))
        self.addParameter(enum_parameter(self.FLAG_TYPE, self.tr("Flag type"),
                                         {k: self.tr(v) for k, v in FLAG_TYPES.items()}, "auto"))
        for name, label in ((self.START_DATE, "Start date"), (self.END_DATE, "End date")):
            self.addParameter(QgsProcessingParameterDateTime(name, self.tr(label), type=DATETIME_DATE,
                                                             optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.DEPTH_MIN, self.tr("Sensor depth from (m)"),
                                                       NUMBER_DOUBLE, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(self.DEPTH_MAX, self.tr("Sensor depth to (m)"),
                                                       NUMBER_DOUBLE, 0.1, minValue=0.0))
        self.addParameter(QgsProcessingParameterString(self.QUALITY_FLAGS,
                                                       self.tr("Accepted quality flags (comma-separated, empty: all)"),
                                                       defaultValue="G", optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.WINDOW, self.tr("Window size (pixels, odd; 1 = the pixel "
                                                                            "containing the station)"),
                                                       NUMBER_INTEGER, 1, minValue=1, maxValue=99))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_OBS, self.tr("Minimum matched days per station"),
                                                       NUMBER_INTEGER, 10, minValue=3))
        self.addParameter(QgsProcessingParameterBoolean(self.COMMON_DAYS,
                                                        self.tr("Match on the days all products have"), True))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Stations with metrics"),
                                                            SOURCE_VECTOR_POINT))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_TABLE, self.tr("Metrics table"),
                                                                fileFilter="CSV files (*.csv)"))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Report"),
                                                                fileFilter="HTML files (*.html)"))
        self.addOutput(QgsProcessingOutputFile("OUTPUT_SUMMARY", self.tr("Station averages of every product (JSON)")))
        for name, label in (("MEAN_UBRMSD", "Station-mean ubRMSD of the main product (m3/m3)"),
                            ("MEDIAN_UBRMSD", "Station-median ubRMSD of the main product (m3/m3)"),
                            ("MEAN_R", "Station-mean R of the main product"),
                            ("MEAN_BIAS", "Station-mean bias of the main product (m3/m3)"),
                            ("N_STATIONS", "Validated stations (main product)")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(label)))

    # ------------------------------------------------------------------------------------
    def _products(self, parameters, context) -> dict[str, str]:
        slots = [(self.PRODUCT, self.PRODUCT_NAME)]
        slots += [(f"PRODUCT_{k}", f"PRODUCT_{k}_NAME") for k in range(2, EXTRA_PRODUCTS + 2)]
        out: dict[str, str] = {}
        for key, name_key in slots:
            path = self.parameterAsFile(parameters, key, context)
            if not path:
                continue
            if not Path(path).is_dir():
                raise QgsProcessingException(self.tr(f"{key}: {path} is not a folder of daily rasters"))
            name = (self.parameterAsString(parameters, name_key, context) or "").strip() or Path(path).name
            base, n = name, 2
            while name in out:
                name = f"{base} ({n})"
                n += 1
            out[name] = path
        if not out:
            raise QgsProcessingException(self.tr("Give at least one product folder"))
        return out

    def _stations(self, parameters, context) -> str:
        csv_path = self.parameterAsFile(parameters, self.STATIONS, context)
        ismn = self.parameterAsFile(parameters, self.ISMN, context)
        if bool(csv_path) == bool(ismn):
            raise QgsProcessingException(
                self.tr("Give the stations either as a CSV file (STATIONS) or as an ISMN folder (ISMN), not both")
                if csv_path else self.tr("Give the stations: a CSV file (STATIONS) or an ISMN folder (ISMN)")
            )
        return csv_path or ismn

    def _guard_outputs(self, parameters, context, products, stations, flags, table_path, html_path) -> None:
        """Refuse, before anything is computed, outputs that are inputs or cannot be written."""
        from ..core.outputs import Output, guard_outputs
        from ..core.preflight import validation_inputs
        from ..core.validation.report import report_output

        outs = [Output("OUTPUT_TABLE", Path(table_path)), report_output(html_path, "OUTPUT_HTML")]
        sink = self.parameterAsOutputLayer(parameters, self.OUTPUT, context) or ""
        sink_path = sink.split("|")[0]
        if sink_path.lower().startswith("ogr:"):
            sink_path = sink_path[4:].split(" ")[0].strip("'\"") if "dbname=" not in sink_path else ""
        if sink_path and Path(sink_path).suffix:
            outs.append(Output("OUTPUT", Path(sink_path)))
        guard_outputs(validation_inputs(products, stations, flags), outs)

    def processAlgorithm(self, parameters, context, feedback):
        from ..core.validation.report import layer_features, layer_fields, write_report
        from ..core.validation.validate import validate_stations, write_metrics_csv

        products = self._products(parameters, context)
        stations = self._stations(parameters, context)
        flags = self.parameterAsFile(parameters, self.FLAGS, context) or None
        flag_type = self.parameter_enum(parameters, self.FLAG_TYPE, context)
        start, end = self.date_range(parameters, self.START_DATE, self.END_DATE, context)
        dmin = self.parameterAsDouble(parameters, self.DEPTH_MIN, context)
        dmax = self.parameterAsDouble(parameters, self.DEPTH_MAX, context)
        if dmax < dmin:
            raise QgsProcessingException(self.tr(f"The depth range {dmin}-{dmax} m is empty (from > to)"))
        qflags = (self.parameterAsString(parameters, self.QUALITY_FLAGS, context) or "").strip() or None
        window = self.parameterAsInt(parameters, self.WINDOW, context)
        if window % 2 == 0:
            raise QgsProcessingException(self.tr(f"WINDOW must be odd (1, 3, 5 ...), got {window}"))
        min_obs = self.parameterAsInt(parameters, self.MIN_OBS, context)
        common = self.parameterAsBool(parameters, self.COMMON_DAYS, context)
        table_path = self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context)
        html_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)

        feedback.pushInfo(self.tr(f"Products: {', '.join(f'{k} = {v}' for k, v in products.items())}"))
        with self.core_call(feedback):
            self._guard_outputs(parameters, context, products, stations, flags, table_path, html_path)
            result = validate_stations(
                products, stations, flags=flags, flag_kind=flag_type, start=start, end=end, window=window,
                min_obs=min_obs, common_days=common, depth_range=(dmin, dmax), quality_flags=qflags,
                progress=lambda p: feedback.setProgress(0.85 * p), is_cancelled=feedback.isCanceled,
            )
            if feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled by the user; no output was written."))
            feedback.setProgressText(self.tr("Writing the table, the layer and the report"))
            write_metrics_csv(result, table_path)
            feedback.setProgress(88)
            written = write_report(result, html_path, table_path)
            feedback.setProgress(96)

        fields = QgsFields()
        for name, t in layer_fields(result):
            fields.append(QgsField(name, field_type(t)))
        sink, dest_id = self.parameterAsSink(parameters, self.OUTPUT, context, fields, WKB_POINT,
                                             QgsCoordinateReferenceSystem("EPSG:4326"))
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        for lon, lat, attrs in layer_features(result):
            f = QgsFeature(fields)
            f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(lon, lat)))
            f.setAttributes([attrs.get(fields.at(i).name()) for i in range(fields.count())])
            sink.addFeature(f, FAST_INSERT)
        del sink
        if context.willLoadLayerOnCompletion(dest_id):
            details = context.layerToLoadOnCompletionDetails(dest_id)
            group = run_group_name(context, self.tr("Validation"), Path(html_path).stem)
            details.setPostProcessor(RunGroupPostProcessor.create(group, None, "validation_stations"))
        feedback.setProgress(100)

        main = result.comparison.average(result.main)
        med = result.comparison.average(result.main, how="median")
        feedback.pushInfo(self.tr(
            f"{result.main}: {main['n_stations']} station(s) validated, station-mean ubRMSD {main['urmsd']:.4f} "
            f"(median {med['urmsd']:.4f}) m3/m3, R {main['R']:.3f}, bias {main['BIAS']:+.4f} m3/m3"))
        return {
            self.OUTPUT: dest_id,
            self.OUTPUT_TABLE: table_path,
            self.OUTPUT_HTML: html_path,
            "OUTPUT_SUMMARY": str(written["summary"]),
            "MEAN_UBRMSD": main["urmsd"],
            "MEDIAN_UBRMSD": med["urmsd"],
            "MEAN_R": main["R"],
            "MEAN_BIAS": main["BIAS"],
            "N_STATIONS": main["n_stations"],
        }
