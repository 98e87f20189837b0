"""The floors of the README's "Architecture" hold: the import contract (import-linter, in
pyproject.toml), the linter and the type checker, run as CI runs the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [
    ["lint-imports"],
    ["ruff", "check", "colretrieve", "tests", "benchmarks"],
    ["mypy"],
], ids=["import-contract", "ruff", "mypy"])
def test_the_code_keeps_its_contracts(command: list[str]) -> None:
    tool = BIN / command[0]
    if not tool.exists():
        pytest.fail(f"{command[0]} is not installed beside {sys.executable}: pip install -e '.[dev]'")
    run = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
