"""The README's Safety section names, for each guarantee, the tests that prove it: every name
must be a test that exists (a renamed or deleted test would leave a guarantee unproved)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.safety.world import ROOT

SAFETY = ROOT / "tests" / "safety"


def _table() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Safety\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "`" in line]


def _named(rows: list[str]) -> list[tuple[str, str]]:
    """(file, test) for every ``file.py::test`` and ``::test`` (same file as the one before)."""
    out = []
    for row in rows:
        proved_by = row.rsplit("|", 2)[-2]
        current = None
        for ref in re.findall(r"`([^`]*::[^`]*|[a-z_/]*test_[a-z_]+\.py)`", proved_by):
            file, _, name = ref.partition("::")
            current = file or current
            assert current, f"{ref!r} names no file: {row}"
            out.append((current, name.split("[")[0]))
    return out


def _path(file: str) -> Path:
    """A name as the table gives it: a path from the root, or a file name under ``tests/``
    (``tests/safety/`` first)."""
    if "/" in file:
        return ROOT / file
    if (SAFETY / file).exists():
        return SAFETY / file
    found = sorted((ROOT / "tests").rglob(file))
    return found[0] if found else SAFETY / file


def _tests_in(file: str) -> set[str]:
    tree = ast.parse(_path(file).read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_test_the_safety_table_names_exists() -> None:
    rows = _table()
    assert len(rows) >= 15, "the Safety table"
    named = _named(rows)
    assert len(named) >= 25, named
    for file, name in named:
        assert _path(file).exists(), f"README names {file}, which does not exist"
        if name:
            assert name in _tests_in(file), f"README names {file}::{name}, which does not exist"
    # every row names at least one test
    for row in rows:
        assert "::test_" in row or "test_dry_run.py" in row, row
