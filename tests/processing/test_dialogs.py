"""What the dialogs show: no parameter ids in the help, a Help button (help URL), sensible
decimals, no "[optional]" on parameters that have a default, and the old saved-model
values (-1 = estimate) still accepted."""

from __future__ import annotations

import re

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingParameterNumber

from ssm_downscaling.processing_provider.compat import FLAG_OPTIONAL, NUMBER_DOUBLE

ALGS = ("ssm:samplescene", "ssm:gapfilllst", "ssm:downscalessm", "ssm:validatestations")


@pytest.mark.parametrize("alg_id", ALGS)
def test_help_uses_labels_and_has_a_url(alg_ready, alg_id):
    alg = alg_ready.algorithmById(alg_id)
    text = alg.shortHelpString()
    ids = [d.name() for d in alg.parameterDefinitions() if d.name().isupper() and "_" in d.name()]
    leaked = [i for i in ids if re.search(rf"(?<![\w/.-]){i}(?![\w/-])", text)]
    assert not leaked, leaked
    assert alg.helpUrl().startswith("https://") and "#" in alg.helpUrl()


@pytest.mark.parametrize("alg_id", ALGS)
def test_doubles_have_few_decimals_and_defaults_are_not_optional(alg_ready, alg_id):
    alg = alg_ready.algorithmById(alg_id)
    for d in alg.parameterDefinitions():
        if isinstance(d, QgsProcessingParameterNumber) and d.dataType() == NUMBER_DOUBLE:
            assert 1 <= d.metadata()["widget_wrapper"]["decimals"] <= 3, d.name()
        if d.defaultValue() is not None and not d.isDestination() and d.type() in ("number", "enum", "boolean"):
            assert not d.flags() & FLAG_OPTIONAL, d.name()


def test_the_downscaler_still_reads_minus_one_as_estimate(alg_ready):
    alg = alg_ready.algorithmById("ssm:downscalessm").create()
    ok, msg = alg.checkParameterValues({"INPUT_SSM": "/x", "INPUT_LST": "/x", "INPUT_NDVI": "/x", "INPUT_ALBEDO": "/x",
                                        "ANOMALY_GAIN": -1, "BANDWIDTH_KM": 0}, QgsProcessingContext())
    assert ok or "ANOMALY_GAIN" not in msg
