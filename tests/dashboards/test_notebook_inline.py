"""The views render inline in Jupyter: a notebook runs them in a real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
from dash_data import write_runs, write_sweep
from nbclient import NotebookClient

PANEL_MIME = "application/vnd.holoviews_exec.v0+json"


def test_the_views_render_as_panel_output_in_a_notebook(tmp_path: Path) -> None:
    write_runs(tmp_path / "runs")
    write_sweep(tmp_path / "sweeps" / "s")
    cells = [
        'import panel as pn\npn.extension("tabulator")',
        "import dashboards\n"
        f"a = dashboards.load_result({str(tmp_path / 'runs' / 'grid-20')!r})\n"
        f"b = dashboards.load_result({str(tmp_path / 'runs' / 'sma-cross')!r})\n"
        "dashboards.result_view(a, theme='light')",
        "dashboards.compare_view({'grid': a, 'sma': b})",
        f"dashboards.sweep_view(dashboards.load_sweep({str(tmp_path / 'sweeps' / 's')!r}))",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    for cell in notebook.cells[1:]:
        outputs = cell.outputs
        assert [o.output_type for o in outputs if o.output_type == "error"] == []
        bundles = [o.data for o in outputs if o.output_type == "execute_result"]
        assert len(bundles) == 1 and PANEL_MIME in bundles[0], cell.source
