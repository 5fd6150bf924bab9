"""The research notebooks (notebooks/, issue 5) run headless from top to bottom on the bundled
sample, in a kernel of this venv's Python, and are committed without outputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL_NAME = "python3"
#: Per cell. A cold numba cache (a fresh clone) compiles each bot's kernel first (~30 s each).
CELL_TIMEOUT_S = 600
#: Settings that would send the kernel to a blob container or a Dask cluster: never in a test.
UNSET = ("TRADETOWER_BLOB_URL", "TRADETOWER_BLOB_CONNECTION_STRING", "TRADETOWER_DASK_SCHEDULER")
#: The MIME type of a Panel object shown inline (a cell's result; pn.extension displays one too).
PANEL_MIME = "application/vnd.holoviews_exec.v0+json"
#: Notebook → number of dashboards it shows inline.
ISSUE_5 = {
    "01_quickstart": 1,
    "02_sweeps_and_walk_forward": 1,
    "03_write_your_own_strategy": 0,
    "04_compare_bots": 1,
}


@pytest.fixture(scope="session")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A folder holding one kernel spec, ``python3``, that starts this interpreter: the
    notebooks run in this venv whatever kernels the machine (or a fresh clone) has."""
    folder = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(folder / KERNEL_NAME)
    return str(folder)


def execute(nb: NotebookNode, kernels: str, workdir: Path) -> Path:
    """Run ``nb`` in place with ``workdir`` as its working directory; returns the folder the
    kernel's ``tempfile`` writes to."""
    scratch = workdir / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in UNSET} | {"TMPDIR": str(scratch)}
    specs = KernelSpecManager(kernel_dirs=[kernels])
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    client = NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=env)
    return scratch


def read(path: Path) -> NotebookNode:
    nb: NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return nb


def code_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_the_kernel_is_this_venvs_python(kernels: str, tmp_path: Path) -> None:
    cell = new_code_cell("import sys\nprint(sys.executable)")  # type: ignore[no-untyped-call]
    nb = new_notebook(cells=[cell])  # type: ignore[no-untyped-call]
    execute(nb, kernels, tmp_path)
    assert nb.cells[0].outputs[0].text.strip() == sys.executable


@pytest.mark.parametrize("name", sorted(ISSUE_5))
def test_notebook_runs_from_top_to_bottom(name: str, kernels: str, tmp_path: Path) -> None:
    nb = read(NOTEBOOKS / f"{name}.ipynb")
    scratch = execute(nb, kernels, tmp_path)  # a failing cell (an assert) raises here
    cells = code_cells(nb)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    results = [out for cell in cells for out in cell.outputs if out.output_type == "execute_result"]
    assert sum(PANEL_MIME in out.data for out in results) == ISSUE_5[name]
    assert list(scratch.iterdir()) == []  # its temporary folder is removed at the end
    assert list(tmp_path.iterdir()) == [scratch]  # and nothing is written where it runs


def test_committed_notebooks_have_no_outputs() -> None:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {path.stem for path in paths} >= set(ISSUE_5)
    for path in paths:
        nb = read(path)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == KERNEL_NAME, path.name
        for cell in code_cells(nb):
            assert cell.outputs == [], f"{path.name}: a cell has outputs"
            assert cell.execution_count is None, f"{path.name}: a cell has an execution count"


@pytest.mark.parametrize("name", sorted(ISSUE_5))
def test_notebook_ends_by_checking_its_figures(name: str) -> None:
    """A broken engine must fail the notebook, not just print different numbers."""
    nb = read(NOTEBOOKS / f"{name}.ipynb")
    checks = [cell for cell in code_cells(nb) if "assert " in cell.source]
    assert checks, f"{name} has no assert"
    assert code_cells(nb).index(checks[-1]) >= len(code_cells(nb)) - 2
