"""The layer rule holds: data flows one way and the pipeline never reads the simulator's truth.

The contracts live in pyproject.toml (`[tool.importlinter]`); `make lint` runs the same check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_dbt_project_does_not_read_truth() -> None:
    """SQL has no imports to lint: the dbt project must not name the truth folder."""
    for path in (ROOT / "dbt_project").rglob("*"):
        if path.suffix in {".sql", ".yml"} and not {"target", "dbt_packages"} & set(path.parts):
            text = path.read_text(encoding="utf-8")
            assert "truth/" not in text and ".truth" not in text, path
