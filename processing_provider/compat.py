"""Names that differ across the supported QGIS versions (3.22 to 3.44 on Qt5, 4.x on Qt6).

Every helper picks, at run time, the spelling the running QGIS accepts, so the algorithms
are written once."""

from __future__ import annotations

from qgis.core import Qgis

#: QGIS accepts ``QMetaType.Type`` for field types from 3.38 on (``QVariant.Type`` is
#: deprecated there and gone with Qt6)
QMETATYPE_FIELDS = Qgis.QGIS_VERSION_INT >= 33800


def field_type(kind: str):
    """The field type to give ``QgsField`` for ``kind`` ("str", "int" = 64-bit, "float")."""
    if QMETATYPE_FIELDS:
        from qgis.PyQt.QtCore import QMetaType

        types = {"str": QMetaType.Type.QString, "int": QMetaType.Type.LongLong, "float": QMetaType.Type.Double}
    else:  # QGIS < 3.38, always Qt5
        from qgis.PyQt.QtCore import QVariant

        types = {"str": QVariant.Type.String, "int": QVariant.Type.LongLong, "float": QVariant.Type.Double}
    try:
        return types[kind]
    except KeyError:
        raise ValueError(f"unknown field kind {kind!r} (expected one of {sorted(types)})") from None
