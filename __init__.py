"""Soil Moisture Downscaling: a QGIS plugin and a plain Python library (``core``).

Importing this package, or ``ssm_downscaling.core``, never imports QGIS; the GUI is
imported lazily by :func:`classFactory` when QGIS loads the plugin.
"""

__version__ = "0.1.0"


def classFactory(iface):
    """QGIS plugin entry point."""
    from .ssm_plugin.plugin import SsmDownscalingPlugin

    return SsmDownscalingPlugin(iface)
