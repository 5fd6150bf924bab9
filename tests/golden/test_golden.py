"""No change silently moves a bot's result: each golden backtest must reproduce its record.

A deliberate change is accepted by re-recording (``tradetower regress --update``, or
``.venv/bin/python tests/golden/record.py``) and committing the JSON files with the change that
explains them. The comparison is :func:`simulator.research.regress.compare`, the one
``tradetower regress`` uses.
"""

from __future__ import annotations

import json

import pytest
from golden_cases import CASES, ROOT, Case, record_of

from simulator.research.regress import compare


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_backtest_reproduces_its_record(case: Case) -> None:
    path = ROOT / f"{case.name}.json"
    assert path.exists(), f"no record for {case.name}: run tradetower regress --update {case.name}"
    expected = json.loads(path.read_text())
    assert expected["n_fills"] > 0
    drifts = compare(expected, record_of(case.run()), getattr(case, "tolerances", None))
    assert not drifts, "; ".join(str(d) for d in drifts)
