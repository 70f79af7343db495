"""Stand-ins for QGIS 4 (Qt6), which cannot be installed here: the source uses only what
Qt6 keeps. Qt6 (PyQt6) removed unscoped enum access (``Qt.RightDockWidgetArea`` must be
``Qt.DockWidgetArea.RightDockWidgetArea``), ``exec_`` and direct ``PyQt5`` imports; QGIS 4
removed the unscoped QGIS enums (``QgsWkbTypes.Point``) the same way.

Every ``Name.Attribute`` in the plugin's, the tests' and the scripts' Python files whose
``Name`` was imported from ``qgis.core``, ``qgis.gui`` or ``qgis.PyQt.*`` is resolved on the
running QGIS; if it is an enum member, it was used unscoped."""

from __future__ import annotations

import ast
import enum
import importlib
import re
from pathlib import Path

import pytest
from ssm_testing import ROOT

SOURCES = ("__init__.py", "core", "processing_provider", "ssm_plugin", "scripts", "tests", "benchmarks")
QT_MODULES = re.compile(r"^qgis\.(core|gui|analysis|PyQt\.\w+)$")


def python_files() -> list[Path]:
    """The repository's own Python files (nothing under build/)."""
    files = []
    for name in SOURCES:
        p = ROOT / name
        files.extend([p] if p.is_file() else sorted(p.rglob("*.py")))
    return [f for f in files if "__pycache__" not in f.parts]


def is_enum_member(obj) -> bool:
    """True for a member of a Python enum or of a sip (PyQt5) enum type."""
    return isinstance(obj, enum.Enum) or type(type(obj)).__name__ == "enumtype"


def imported_classes(tree: ast.Module) -> dict[str, object]:
    """Names bound by ``from qgis.core/gui/PyQt.X import Name`` anywhere in ``tree``, and
    plain aliases of them (``number = QgsProcessingParameterNumber``)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and QT_MODULES.match(node.module):
            module = importlib.import_module(node.module)
            for alias in node.names:
                obj = getattr(module, alias.name, None)
                if isinstance(obj, type):
                    found[alias.asname or alias.name] = obj
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Name) and node.value.id in found):
            found[node.targets[0].id] = found[node.value.id]
    return found


def unscoped_enum_uses(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line Class.Member`` for each enum member reached without its enum's name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    classes = imported_classes(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in classes:
            obj = getattr(classes[node.value.id], node.attr, None)
            if obj is not None and is_enum_member(obj):
                hits.append(f"{path.relative_to(root)}:{node.lineno} {node.value.id}.{node.attr}")
    return hits


def test_the_check_sees_unscoped_and_accepts_scoped(tmp_path):
    f = tmp_path / "sample.py"
    f.write_text("from qgis.PyQt.QtCore import Qt\nfrom qgis.core import Qgis\n"
                 "a = Qt.RightDockWidgetArea\nb = Qt.DockWidgetArea.RightDockWidgetArea\n"
                 "c = Qgis.MessageLevel.Warning\nd = Qgis.QGIS_VERSION_INT\ne = Qt\nf = e.LeftDockWidgetArea\n")
    assert unscoped_enum_uses(f, tmp_path) == ["sample.py:3 Qt.RightDockWidgetArea", "sample.py:8 e.LeftDockWidgetArea"]


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unscoped_enum(path):
    assert unscoped_enum_uses(path) == []


def test_no_qt5_only_names():
    """No ``exec_``, no direct PyQt5/PyQt6/sip imports, no Qt5-only matplotlib backend import."""
    bad = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr == "exec_":
                bad.append(f"{where} exec_")
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            for m in modules:
                if m.split(".")[0] in ("PyQt5", "PyQt6", "sip"):
                    bad.append(f"{where} import {m}")
    assert bad == []


def test_metadata_declares_qt6_and_the_version_range():
    text = (ROOT / "metadata.txt").read_text(encoding="utf-8")
    assert re.search(r"^supportsQt6=True$", text, re.M)
    assert re.search(r"^qgisMinimumVersion=3\.22$", text, re.M)
    assert re.search(r"^qgisMaximumVersion=4\.99$", text, re.M)
