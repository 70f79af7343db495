"""The packaged zip passes the QGIS plugin repository's published upload rules (its
validator: size, archive layout, no compiled or binary code, metadata and its URLs, the
licence) and declares the QGIS range it runs on. The repository also requests each URL;
here only their form is checked (no network in tests)."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from ssm_testing import ROOT

MAX_SIZE = 25_000_000  # bytes, the repository's upload limit
REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker", "repository")
URL_KEYS = {"tracker": "http://bugs", "repository": "http://repo", "homepage": "http://homepage"}
FORBIDDEN_DIRS = {"__MACOSX", ".git", "__pycache__"}
#: compiled code and executables: never in a plugin (data such as the shipped GeoTIFF is fine)
BINARY_SUFFIXES = {".pyc", ".pyo", ".pyd", ".so", ".dll", ".dylib", ".exe", ".bin", ".o", ".a", ".lib", ".jar",
                   ".class", ".whl", ".egg"}
MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
GPL_COMPATIBLE = ("GNU GENERAL PUBLIC LICENSE", "MIT License", "BSD", "Apache License")


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (zip_path,) = out.glob("ssm_downscaling-*.zip")
    return zip_path


@pytest.fixture(scope="module")
def metadata(plugin_zip) -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read_string(zipfile.ZipFile(plugin_zip).read("ssm_downscaling/metadata.txt").decode("utf-8"))
    assert parser.has_section("general")
    return dict(parser.items("general"))


def test_size_and_archive_layout(plugin_zip):
    assert plugin_zip.stat().st_size <= MAX_SIZE
    zf = zipfile.ZipFile(plugin_zip)
    assert zf.testzip() is None
    names = zf.namelist()
    assert {n.split("/")[0] for n in names} == {"ssm_downscaling"}
    assert "ssm_downscaling".isidentifier()
    for n in names:
        assert ".." not in n and not n.startswith("/") and "\\" not in n and not re.match(r"^[A-Za-z]:", n), n
        assert not FORBIDDEN_DIRS.intersection(n.split("/")), n
        assert ".pyc" not in n, n
    assert "ssm_downscaling/__init__.py" in names and "ssm_downscaling/metadata.txt" in names


def test_no_binaries(plugin_zip):
    zf = zipfile.ZipFile(plugin_zip)
    for info in zf.infolist():
        suffix = Path(info.filename).suffix.lower()
        assert suffix not in BINARY_SUFFIXES, info.filename
        assert not zf.read(info.filename)[:4].startswith(MAGIC), f"{info.filename} is an executable"
        assert not info.external_attr >> 16 & 0o111, f"{info.filename} is marked executable"


def test_metadata_fields_and_urls(plugin_zip, metadata):
    missing = [k for k in REQUIRED if not metadata.get(k, "").strip()]
    assert not missing
    for key, placeholder in URL_KEYS.items():
        url = metadata.get(key)
        if key == "homepage" and url is None:
            continue
        parsed = urlparse(url)
        assert url != placeholder and parsed.scheme == "https" and parsed.netloc, f"{key}={url}"
    assert re.match(r"^[^/]+$", metadata["author"])
    assert re.match(r"^\d+\.\d+\.\d+$", metadata["version"])
    assert metadata["icon"] and f"ssm_downscaling/{metadata['icon']}" in zipfile.ZipFile(plugin_zip).namelist()
    for flag in ("experimental", "deprecated"):
        assert metadata.get(flag, "False") in ("True", "False")


def test_qgis_range_includes_qgis4(metadata):
    """QGIS 4 loads a plugin only when qgisMaximumVersion is 4.0 or more (an absent one
    means 3.99); the minimum stays at 3.22."""
    version = lambda s: tuple(int(x) for x in s.split("."))  # noqa: E731
    assert version(metadata["qgisMinimumVersion"]) == (3, 22)
    assert version(metadata["qgisMaximumVersion"]) >= (4, 0)


def test_licence(plugin_zip):
    text = zipfile.ZipFile(plugin_zip).read("ssm_downscaling/LICENSE").decode("utf-8", "replace")
    assert any(marker in text for marker in GPL_COMPATIBLE)
