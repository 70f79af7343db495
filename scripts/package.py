#!/usr/bin/env python3
"""Build the installable plugin zip: one folder ``ssm_downscaling/`` with the plugin's
runtime files only (no tests, benchmarks, build or dev files). Deterministic: the same
tree gives the same bytes.

    python scripts/package.py --out build/dist
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "ssm_downscaling"
#: top-level entries that make the plugin; everything else (tests, benchmarks, scripts,
#: Makefile, CI, tool settings) stays out of the zip
INCLUDE = ("__init__.py", "metadata.txt", "LICENSE", "README.md", "core", "processing_provider", "ssm_plugin")
EXCLUDE_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
EXCLUDE_SUFFIXES = {".pyc", ".pyo", ".aux.xml", ".orig", ".rej", ".swp"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def version() -> str:
    text = (ROOT / "metadata.txt").read_text(encoding="utf-8")
    m = re.search(r"^version=(\S+)", text, re.M)
    if not m:
        raise SystemExit("metadata.txt has no version")
    return m.group(1)


def plugin_files() -> list[Path]:
    files: list[Path] = []
    for name in INCLUDE:
        p = ROOT / name
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(ROOT)
                if not f.is_file() or EXCLUDE_PARTS.intersection(rel.parts):
                    continue
                if any(str(f).endswith(s) for s in EXCLUDE_SUFFIXES):
                    continue
                files.append(f)
        else:
            raise SystemExit(f"missing plugin part: {name}")
    return files


def build(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN}-{version()}.zip"
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in plugin_files():
            info = zipfile.ZipInfo(f"{PLUGIN}/{f.relative_to(ROOT).as_posix()}", FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, f.read_bytes())
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "dist", help="output folder")
    args = ap.parse_args(argv)
    path = build(args.out)
    with zipfile.ZipFile(path) as zf:
        n = len(zf.namelist())
    print(f"{path} ({n} files, {path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
