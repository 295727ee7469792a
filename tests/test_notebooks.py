"""Execute every notebook in notebooks/ with small settings (SSMNEURO_QUICK=1), one test per notebook.

A notebook whose metadata holds ``"ssmneuro": {"needs_shared_data": true}`` is skipped, with the reason,
when ../shared/data is absent (CI always has it).
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHARED_DATA = (ROOT / ".." / "shared" / "data").is_dir()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    if nb.metadata.get("ssmneuro", {}).get("needs_shared_data") and not SHARED_DATA:
        pytest.skip("../shared/data is absent; this notebook reads a real recording")
    monkeypatch.setenv("SSMNEURO_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
