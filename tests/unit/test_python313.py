"""How ``make build`` and the sam-build test find a Python 3.13: the documented places only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from perimeter_local import python313


def _fake_interpreter(path: Path, major: int, minor: int) -> Path:
    # Answers the one question python313 asks an interpreter: its version.
    path.write_text(f"#!/bin/sh\necho {major} {minor}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with nothing on it but an empty directory: no python3.13, no pyenv."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("PYTHON313", raising=False)
    return empty


def test_none_found_says_what_to_set(bare_path: Path, tmp_path: Path, capsys) -> None:
    assert python313.find() is None
    assert python313.main([str(tmp_path / "links")]) == 1
    err = capsys.readouterr().err
    assert "python3.13 on PATH" in err and "PYTHON313=" in err and err.count("\n") == 1


def test_python313_variable_names_any_file(bare_path: Path, tmp_path: Path, monkeypatch) -> None:
    interpreter = _fake_interpreter(tmp_path / "my-python", 3, 13)
    monkeypatch.setenv("PYTHON313", str(interpreter))
    directory = python313.link_dir(tmp_path / "links")
    assert directory is not None
    assert (directory / "python3.13").resolve() == interpreter.resolve()


def test_wrong_version_is_not_taken(bare_path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHON313", str(_fake_interpreter(tmp_path / "py", 3, 12)))
    assert python313.find() is None


def test_python313_on_path(bare_path: Path) -> None:
    interpreter = _fake_interpreter(bare_path / "python3.13", 3, 13)
    assert python313.find() == str(interpreter)


def test_pyenv_newest_313_without_a_version_written_anywhere(bare_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "pyenv-root"
    for version in ("3.13.1", "3.13.10", "3.12.9"):
        (root / "versions" / version / "bin").mkdir(parents=True)
    _fake_interpreter(root / "versions" / "3.13.10" / "bin" / "python3.13", 3, 13)
    pyenv = bare_path / "pyenv"
    pyenv.write_text(
        f'#!/bin/sh\nif [ "$1" = root ]; then echo {root}; else printf "3.12.9\\n3.13.1\\n3.13.10\\n"; fi\n'
    )
    pyenv.chmod(0o755)
    assert python313.find() == str(root / "versions" / "3.13.10" / "bin" / "python3.13")
