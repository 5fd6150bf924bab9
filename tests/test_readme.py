"""The README's Python examples run as written, in order, as a reader would run them."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_examples_run(tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 2, "README lost its Python examples"
    namespace: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for k, block in enumerate(blocks):
            code = block.replace('"runs/my-run"', repr(str(tmp_path / "run")))
            code = code.replace('"runs/history-cache"', repr(str(tmp_path / "history")))
            code = code.replace('"runs/my-checkpoint.npz"', repr(str(tmp_path / "ck.npz")))
            exec(compile(code, f"README.md block {k}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    result = namespace["result"]
    assert result.metrics["bars"] > 0  # type: ignore[attr-defined]
    assert (tmp_path / "run" / "fills.parquet").exists()
    assert namespace["grid"].metrics["n_fills"] > 0  # type: ignore[attr-defined]
    assert namespace["cached_run"].metrics["bars"] > 0  # type: ignore[attr-defined]
    later, whole = namespace["later"], namespace["whole"]
    assert later.fills.equals(whole.fills)  # type: ignore[attr-defined]
    assert len(namespace["guarded"].risk_events) > 0  # type: ignore[attr-defined, arg-type]
    assert len(namespace["hourly"]) < len(namespace["market"].index)  # type: ignore[arg-type,attr-defined]
    assert namespace["ranked"]["return_pct"].is_monotonic_decreasing  # type: ignore[index]
    table = namespace["table"]
    assert len(table) == 6 and table["n_fills"].gt(0).all()  # type: ignore[attr-defined]
