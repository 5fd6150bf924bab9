"""`tradetower regress`: the golden records pass as they are; a moved value fails, named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from simulator.research.regress import Drift, compare
from tradetower.cli import main

GOLDEN = ROOT / "tests" / "golden"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def record(**metrics: object) -> dict[str, object]:
    return {"n_fills": 3, "fills_sha256": "ab", "metrics": metrics}


def test_compare_allows_float_noise_within_the_tolerance_and_names_anything_else() -> None:
    assert compare(record(a=1.0, b=2), record(a=1.0 + 1e-12, b=2)) == []
    assert compare(record(a=1.0), record(a=1.001)) == [Drift("a", 1.0, 1.001, pytest.approx(1e-3))]
    assert compare(record(a=1.0), record(a=1.001), {"a": 0.01}) == []
    assert compare(record(s="ACTIVE"), record(s="STOPPED")) == [Drift("s", "ACTIVE", "STOPPED")]
    assert compare(record(a=1.0), record(b=1.0)) == [
        Drift("a", 1.0, "absent"),
        Drift("b", "absent", 1.0),
    ]
    moved = {**record(), "n_fills": 4, "fills_sha256": "cd"}
    assert compare(record(), moved) == [Drift("n_fills", 3, 4), Drift("fills_sha256", "ab", "cd")]
    assert str(Drift("sharpe", 1.5, 1.515, 0.01)) == "sharpe 1.5→1.515 (rel 1.00e-02)"


def copy_golden(tmp_path: Path) -> Path:
    """The golden folder in a checkout of its own (its cases read ../../data)."""
    folder = tmp_path / "tests" / "golden"
    folder.mkdir(parents=True)
    for name in ["golden_cases.py", *(f"{n}.json" for n in NAMES)]:
        shutil.copy(GOLDEN / name, folder / name)
    (tmp_path / "data").symlink_to(ROOT / "data")
    return folder


def test_the_real_records_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regress", "--cases", str(GOLDEN)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted(f"ok       {name}" for name in NAMES)
    assert len(lines) == 10


def test_a_perturbed_metric_fails_naming_the_metric_and_the_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_golden(tmp_path)
    path = folder / "grid.json"
    original = path.read_text()
    stored = json.loads(original)
    true_sharpe = stored["metrics"]["sharpe"]
    stored["metrics"]["sharpe"] = true_sharpe * 1.002
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")

    assert main(["regress", "--cases", str(folder)]) == 1
    lines = capsys.readouterr().out.splitlines()
    drift = [line for line in lines if not line.startswith("ok ")]
    rel = abs(true_sharpe - true_sharpe * 1.002) / abs(true_sharpe * 1.002)
    assert drift == [
        f"DRIFT    grid          sharpe {true_sharpe * 1.002:.12g}→{true_sharpe:.12g} "
        f"(rel {rel:.2e})"
    ]
    assert len(lines) == 10

    assert main(["regress", "--cases", str(folder), "--update", "grid"]) == 0
    assert capsys.readouterr().out == "recorded grid          4041 fills -> grid.json\n"
    assert path.read_text() == original
    assert main(["regress", "--cases", str(folder), "grid"]) == 0
    assert capsys.readouterr().out == "ok       grid\n"


def test_a_missing_record_fails_and_an_unknown_case_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_golden(tmp_path)
    (folder / "twap.json").unlink()
    assert main(["regress", "--cases", str(folder), "twap"]) == 1
    assert capsys.readouterr().out.startswith("MISSING  twap")
    assert main(["regress", "--cases", str(folder), "nope"]) == 2
    assert "error: unknown golden case(s) nope; known: sma_cross, simple_grid" in (
        capsys.readouterr().err
    )
