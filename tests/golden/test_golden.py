"""No change silently moves a bot's result: each golden backtest must reproduce its record.

A deliberate change is accepted by re-recording (``.venv/bin/python tests/golden/record.py``)
and committing the JSON files with the change that explains them.
"""

from __future__ import annotations

import json
import math

import pytest
from golden_cases import CASES, ROOT, Case, record_of


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_backtest_reproduces_its_record(case: Case) -> None:
    path = ROOT / f"{case.name}.json"
    assert path.exists(), f"no record for {case.name}: run tests/golden/record.py {case.name}"
    expected = json.loads(path.read_text())
    got = record_of(case.run())
    assert got["n_fills"] == expected["n_fills"] > 0
    assert got["fills_sha256"] == expected["fills_sha256"]
    assert set(got["metrics"]) == set(expected["metrics"])
    for key, want in expected["metrics"].items():
        have = got["metrics"][key]
        if isinstance(want, float) and isinstance(have, float):
            assert math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-12), key
        else:
            assert have == want, key
