"""ssm:listgranules - which files an extent and a date range need, as a text file."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFileDestination,
)

from ..core.readers.granules import GLOBAL_PRODUCTS, MODIS_PRODUCTS
from .base import SsmAlgorithm
from .compat import DATETIME_DATE

PRODUCTS = list(MODIS_PRODUCTS) + list(GLOBAL_PRODUCTS)

HELP = """Lists the granules (file-name patterns, one a line, '*' for the production time stamp) each chosen product needs for an extent and a date range, computed offline, as a text file to hand to a download tool (e.g. a wget/aria2 filter or an earthaccess search).

MODIS: the sinusoidal tiles hHHvVV that intersect the extent (computed from the MODIS tile grid), for each file date: daily products every day, MOD13A2 16-day composites from day-of-year 1, 17, 33, ..., MYD13A2 from 9, 25, ..., MOD09A1 every 8 days. LPRM: AMSR-E names up to 2011-10-03, AMSR2 from 2012-07-02, both passes. ESA CCI, SMAP, JAXA, GLDAS: global files, one per day (GLDAS: 8 three-hourly files). ERA5/ERA5-Land: one CDS request line per month with the area (N, W, S, E).

Products are given by name or number (PRODUCTS, several)."""


class ListGranulesAlgorithm(SsmAlgorithm):
    NAME = "listgranules"
    DISPLAY_NAME = "List the product files for an extent and dates"
    GROUP = "1 - Inputs"
    GROUP_ID = "inputs"
    TAGS = "download,granules,tiles,MODIS,h v,LPRM,ESA CCI,SMAP,ERA5,GLDAS,file list"
    HELP = HELP

    def initAlgorithm(self, config=None) -> None:
        p = QgsProcessingParameterEnum("PRODUCTS", self.tr("Products"), options=PRODUCTS, allowMultiple=True,
                                       defaultValue=["MOD11A1", "MOD13A2", "LPRM"])
        p.setUsesStaticStrings(True)
        self.addParameter(p)
        self.addParameter(QgsProcessingParameterExtent("EXTENT", self.tr("Extent")))
        self.addParameter(QgsProcessingParameterDateTime("START_DATE", self.tr("Start date"),
                                                         type=DATETIME_DATE))
        self.addParameter(QgsProcessingParameterDateTime("END_DATE", self.tr("End date"),
                                                         type=DATETIME_DATE))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", self.tr("Granule list"),
                                                                self.tr("Text files (*.txt)")))
        self.addOutput(QgsProcessingOutputNumber("GRANULES", self.tr("Number of granules")))

    @staticmethod
    def products(value) -> list[str] | None:
        vals = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v.strip()]
        out = []
        for v in vals:
            s = str(v).strip()
            if s.isdigit() and int(s) < len(PRODUCTS):
                out.append(PRODUCTS[int(s)])
            elif s.upper() in PRODUCTS:
                out.append(s.upper())
            else:
                return None
        return out

    def checkParameterValues(self, parameters, context):
        prods = self.products(parameters.get("PRODUCTS") if parameters.get("PRODUCTS") not in (None, "") else [])
        if not prods:
            return False, self.tr(f"PRODUCTS: give one or more of {', '.join(PRODUCTS)} (names or numbers)")
        named = dict(parameters)
        named["PRODUCTS"] = prods
        return super().checkParameterValues(named, context)

    def processAlgorithm(self, parameters, context, feedback):
        from ..core.readers.granules import write_granule_list

        prods = self.products(parameters.get("PRODUCTS"))
        start, end = self.date_range(parameters, "START_DATE", "END_DATE", context)
        if start is None or end is None:
            raise QgsProcessingException(self.tr("Give START_DATE and END_DATE"))
        crs = self.parameterAsExtentCrs(parameters, "EXTENT", context)
        if crs is None or not crs.isValid():
            crs = QgsCoordinateReferenceSystem("EPSG:4326")
        rect = self.parameterAsExtent(parameters, "EXTENT", context, crs)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        with self.core_call(feedback):
            path = write_granule_list(out, prods, (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()),
                                      start, end, crs.toWkt())
        n = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#"))
        feedback.pushInfo(self.tr(f"{n} granule(s) of {', '.join(prods)} listed in {path}"))
        return {"OUTPUT": str(path), "GRANULES": n}
