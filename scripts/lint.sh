#!/usr/bin/env bash
# make lint: the repository's own style (ruff) and the QGIS plugin repository's upload scans
# on the packaged plugin (flake8 with flake8-qgis, bandit, detect-secrets). Any finding
# fails. Tools come from build/venv (requirements-dev.txt); flake8's settings are in .flake8
# (ruff's choices, QGS202 off with the reason there); bandit and detect-secrets run with
# their defaults, as the repository runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=build/venv/bin
OUT=build/lint
rm -rf "$OUT" && mkdir -p "$OUT/pkg"

echo "lint: ruff"
"$BIN/ruff" check .

echo "lint: package"
"$BIN/python" scripts/package.py --out "$OUT" > /dev/null
"$BIN/python" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$OUT"/ssm_downscaling-*.zip "$OUT/pkg"
PKG="$OUT/pkg/ssm_downscaling"

echo "lint: flake8 + flake8-qgis (packaged plugin, scripts, tests)"
"$BIN/flake8" --config .flake8 "$PKG" scripts tests

echo "lint: bandit (packaged plugin)"
"$BIN/bandit" -q -r "$PKG"

echo "lint: detect-secrets (packaged plugin)"
(cd "$PKG" && "$ROOT/$BIN/detect-secrets" scan --all-files) > "$OUT/secrets.json"
"$BIN/python" - "$OUT/secrets.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for path, found in results.items():
    for f in found:
        print(f"{path}:{f['line_number']}: {f['type']}")
sys.exit(1 if results else 0)
PY
echo "lint: no findings"
