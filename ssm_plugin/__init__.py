"""The QGIS GUI of the plugin (plugin class, dock widget, styles, icons)."""
