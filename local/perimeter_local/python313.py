"""Find a Python 3.13 interpreter for ``sam build`` (the functions' runtime is python3.13).

Without a container, ``sam build`` looks up an executable named ``python3.13`` on PATH and
checks its version. Machines differ in where one lives, so this module looks in the documented
places only, in this order:

1. ``PYTHON313``: the path of an interpreter (any file name) the user names;
2. ``python3.13`` on PATH, if it really runs (a pyenv shim for a version not selected does not);
3. pyenv, when installed: the newest 3.13.x it holds (no version number is written here).

It then puts a ``python3.13`` link to that interpreter in a directory of its own and prints
that directory, so ``PATH=<dir>:$PATH sam build`` works whatever the interpreter's file name.
With none found it says what to install or set and exits 1.

    python -m perimeter_local.python313 .perimeter/python313   # prints the directory
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

WANTED = (3, 13)
HOW_TO = (
    "no Python 3.13 interpreter found: sam build for the python3.13 runtime needs one (or a container). "
    "Put python3.13 on PATH, install it with pyenv, or set PYTHON313=/path/to/python3.13"
)


def _version(interpreter: str) -> tuple[int, int] | None:
    try:
        proc = subprocess.run(
            [interpreter, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    parts = proc.stdout.split()
    if proc.returncode != 0 or len(parts) != 2:
        return None
    return int(parts[0]), int(parts[1])


def _from_pyenv() -> str | None:
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return None
    try:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30, check=False)
        bare = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    pattern = re.compile(r"^3\.13\.(\d+)$")
    found = sorted(
        (int(m.group(1)), line.strip())
        for line in bare.stdout.splitlines()
        if (m := pattern.match(line.strip()))
    )
    if not found:
        return None
    return str(Path(root.stdout.strip()) / "versions" / found[-1][1] / "bin" / "python3.13")


def find() -> str | None:
    """The path of a working Python 3.13 interpreter, or None."""
    candidates = [os.environ.get("PYTHON313"), shutil.which("python3.13"), _from_pyenv()]
    for candidate in candidates:
        if candidate and _version(candidate) == WANTED:
            return candidate
    return None


def link_dir(target: Path) -> Path | None:
    """A directory holding ``python3.13`` -> the interpreter found, or None."""
    interpreter = find()
    if interpreter is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    link = target / "python3.13"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path(interpreter).resolve())
    return target.resolve()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = link_dir(Path(args[0] if args else ".perimeter/python313"))
    if directory is None:
        print(f"perimeter: {HOW_TO}", file=sys.stderr)
        return 1
    print(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
