"""cfn-lint and checkov on template.yaml, offline, as part of the suite.

Both pin their own boto3 and pydantic, so they live in their own virtual environment
(``.venv-lint``, installed by ``make test``), as SAM does in ``.venv-sam``. Every checkov
suppression sits in the resource's ``Metadata.checkov.skip`` with its reason; the test also
proves each one is needed: with the suppressions removed, checkov fails exactly those checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from perimeter_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
#: organization mode's member stack (deployed by a StackSet): held to the same scanners
MEMBER = ROOT / "member.yaml"
TEMPLATES = {"template": TEMPLATE, "member": MEMBER}


def _tool(name: str, env_var: str) -> str:
    path = os.environ.get(env_var) or str(ROOT / ".venv-lint" / "bin" / name)
    if not Path(path).exists() and shutil.which(name) is None:
        pytest.fail(f"{name} is not installed: run `make test` (it installs .venv-lint)")
    return path if Path(path).exists() else str(shutil.which(name))


def _offline_env() -> dict[str, str]:
    # No Prisma Cloud guideline download, no SCA scan: the run must not need the network.
    return {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}


def _checkov(*paths: Path) -> list[dict[str, Any]]:
    """checkov's results for each template; the runs go in parallel (most of a run is start-up)."""
    procs = [
        subprocess.Popen(
            [
                _tool("checkov", "PERIMETER_CHECKOV"),
                "-f",
                str(path),
                "--framework",
                "cloudformation",
                "--skip-download",
                "--compact",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_offline_env(),
        )
        for path in paths
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert stdout.strip(), stderr[-3000:]
        report = json.loads(stdout)
        if isinstance(report, list):  # one report per framework
            report = next(r for r in report if r.get("check_type") == "cloudformation")
        out.append(report["results"])
    return out


def _ids(checks: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"].split(".", 1)[1]) for c in checks}


@pytest.mark.parametrize("path", TEMPLATES.values(), ids=TEMPLATES.keys())
def test_cfn_lint_is_clean(path: Path) -> None:
    proc = subprocess.run(
        [_tool("cfn-lint", "PERIMETER_CFN_LINT"), str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _suppressions(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    out = {}
    for logical_id, res in template["Resources"].items():
        for skip in (res.get("Metadata", {}).get("checkov", {}) or {}).get("skip", []):
            out[(skip["id"], logical_id)] = str(skip.get("comment", ""))
    return out


@pytest.mark.parametrize("path", TEMPLATES.values(), ids=TEMPLATES.keys())
def test_checkov_is_clean_and_every_suppression_is_justified_and_needed(path: Path, tmp_path: Path) -> None:
    template = load_template(path)
    suppressed = _suppressions(template)
    for (check, resource), why in suppressed.items():
        assert len(why.split()) >= 8, f"{resource}: suppression of {check} needs its reason in place"

    # The same template without its suppressions (JSON is a template too): each one must hide
    # a real failure, and nothing else may fail.
    bare_template = json.loads(json.dumps(template))
    for res in bare_template["Resources"].values():
        res.get("Metadata", {}).pop("checkov", None)
    bare = tmp_path / "template.json"
    bare.write_text(json.dumps(bare_template))
    results, bare_results = _checkov(path, bare)

    failed = _ids(results["failed_checks"])
    assert not failed, f"checkov fails: {sorted(failed)}"
    assert _ids(results["skipped_checks"]) == set(suppressed)
    unsuppressed = _ids(bare_results["failed_checks"])
    assert unsuppressed == set(suppressed), {
        "suppressed but passing": sorted(set(suppressed) - unsuppressed),
        "failing and not suppressed": sorted(unsuppressed - set(suppressed)),
    }
