"""The README's Python examples run as written (from the repository root)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_examples() -> None:
    assert python_blocks(), "README lost its Python example"


@pytest.mark.parametrize("block", python_blocks())
def test_readme_python_example_runs(block: str, tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        namespace: dict[str, object] = {}
        exec(
            compile(
                block.replace('"runs/my-run"', repr(str(tmp_path / "run"))), "README.md", "exec"
            ),
            namespace,
        )
    finally:
        os.chdir(cwd)
    result = namespace.get("result")
    assert result is not None and result.metrics["bars"] > 0  # type: ignore[attr-defined]
    assert (tmp_path / "run" / "fills.parquet").exists()
    grid = namespace.get("grid")
    if grid is not None:
        assert grid.metrics["n_fills"] > 0  # type: ignore[attr-defined]
