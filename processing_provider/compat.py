"""Names that differ across the supported QGIS versions (3.22 to 3.44 on Qt5, 4.x on Qt6).

QGIS 3.30-3.36 moved many enums into ``Qgis`` (``Qgis.ProcessingNumberParameterType.Double``
for ``QgsProcessingParameterNumber.Double``); the old names are deprecated in 3.44 and gone
in QGIS 4, the new ones do not exist before 3.30/3.36. Each constant here is the first of
its spellings that the running QGIS has, always in scoped form, so the algorithms are
written once."""

from __future__ import annotations

from qgis import core as _core
from qgis.core import Qgis

#: QGIS accepts ``QMetaType.Type`` for field types from 3.38 on (``QVariant.Type`` is
#: deprecated there and gone with Qt6)
QMETATYPE_FIELDS = Qgis.QGIS_VERSION_INT >= 33800


def qgis_enum(*names: str):
    """The first of the dotted ``names`` (looked up in ``qgis.core``) that exists, e.g.
    ``qgis_enum("Qgis.WkbType.Point", "QgsWkbTypes.Type.Point")``."""
    for name in names:
        obj = _core
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise AttributeError(f"none of {names} exists in this QGIS ({Qgis.QGIS_VERSION})")


NUMBER_INTEGER = qgis_enum("Qgis.ProcessingNumberParameterType.Integer", "QgsProcessingParameterNumber.Type.Integer")
NUMBER_DOUBLE = qgis_enum("Qgis.ProcessingNumberParameterType.Double", "QgsProcessingParameterNumber.Type.Double")
FILE_FILE = qgis_enum("Qgis.ProcessingFileParameterBehavior.File", "QgsProcessingParameterFile.Behavior.File")
FILE_FOLDER = qgis_enum("Qgis.ProcessingFileParameterBehavior.Folder", "QgsProcessingParameterFile.Behavior.Folder")
DATETIME_DATE = qgis_enum("Qgis.ProcessingDateTimeParameterDataType.Date", "QgsProcessingParameterDateTime.Type.Date")
SOURCE_FILE = qgis_enum("Qgis.ProcessingSourceType.File", "QgsProcessing.SourceType.TypeFile")
SOURCE_VECTOR_POINT = qgis_enum("Qgis.ProcessingSourceType.VectorPoint", "QgsProcessing.SourceType.TypeVectorPoint")
FLAG_ADVANCED = qgis_enum("Qgis.ProcessingParameterFlag.Advanced", "QgsProcessingParameterDefinition.Flag.FlagAdvanced")
FLAG_OPTIONAL = qgis_enum("Qgis.ProcessingParameterFlag.Optional", "QgsProcessingParameterDefinition.Flag.FlagOptional")
WKB_POINT = qgis_enum("Qgis.WkbType.Point", "QgsWkbTypes.Type.Point")
FAST_INSERT = qgis_enum("QgsFeatureSink.Flag.FastInsert")


def field_type(kind: str):
    """The field type to give ``QgsField`` for ``kind`` ("str", "int" = 64-bit, "float")."""
    from qgis.PyQt.QtCore import QMetaType

    types = {"str": QMetaType.Type.QString, "int": QMetaType.Type.LongLong, "float": QMetaType.Type.Double}
    if kind not in types:
        raise ValueError(f"unknown field kind {kind!r} (expected one of {sorted(types)})")
    if QMETATYPE_FIELDS:
        return types[kind]
    from qgis.PyQt.QtCore import QVariant  # QGIS < 3.38, always Qt5

    # Qt5 numbers QVariant::Type as QMetaType::Type; QGIS < 3.38 accepts only the former
    return QVariant.Type(int(types[kind]))  # noqa: QGS402


#: temporal modes and units (moved into ``Qgis`` in QGIS 3.24-3.30)
RASTER_TEMPORAL_FIXED = qgis_enum("Qgis.RasterTemporalMode.FixedTemporalRange",
                                  "QgsRasterLayerTemporalProperties.TemporalMode.ModeFixedTemporalRange")
VECTOR_TEMPORAL_INSTANT_FIELD = qgis_enum("Qgis.VectorTemporalMode.FeatureDateTimeInstantFromField",
                                          "QgsVectorLayerTemporalProperties.TemporalMode.ModeFeatureDateTimeInstantFromField")
NAV_OFF = qgis_enum("Qgis.TemporalNavigationMode.Disabled", "QgsTemporalNavigationObject.NavigationMode.NavigationOff")
NAV_ANIMATED = qgis_enum("Qgis.TemporalNavigationMode.Animated", "QgsTemporalNavigationObject.NavigationMode.Animated")
TEMPORAL_DAYS = qgis_enum("Qgis.TemporalUnit.Days", "QgsUnitTypes.TemporalUnit.TemporalDays")
