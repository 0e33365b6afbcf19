"""The README's undo walk, as a person types it: ``perimeter local up`` (a moto server that
outlives each command), ``invoke --stage`` remediates a sample, ``audit list`` shows the
record, ``restore`` puts the rule back (read back from the server), ``local down`` stops it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
SAMPLE = ROOT / "events" / "AuthorizeSecurityGroupIngress--world-ssh.json"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perimeter_local.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _exports(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        assert line.startswith("export "), line
        key, _, value = line.removeprefix("export ").partition("=")
        out[key] = value
    return out


def test_undo_walk_against_local_up(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    up = _run(["local", "up"], tmp_path, base)
    try:
        assert up.returncode == 0, up.stderr
        exports = _exports(up.stdout)
        assert set(exports) == {
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        }
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        state = json.loads((tmp_path / ".perimeter" / "local.json").read_text())
        assert state["endpoint"] == exports["AWS_ENDPOINT_URL"]
        # A second `up` finds the running one instead of starting another.
        again = _run(["local", "up"], tmp_path, base)
        assert _exports(again.stdout) == exports
        env = {**base, **exports}
        template = str(ROOT / "template.yaml")

        inv = _run(["invoke", "SgGuardFunction", "-e", str(SAMPLE), "--stage", "-t", template], tmp_path, env)
        assert inv.returncode == 0, inv.stderr[-2000:]
        summary = json.loads(inv.stdout)
        assert summary["results"][0]["result"]["status"] == "remediated"
        group = summary["staged"]["ids"]["sg-0123456789abcdef0"]
        assert "ingress tcp/22 from 0.0.0.0/0" not in summary["after"]["security_group_rules"][group]

        listed = _run(["audit", "list"], tmp_path, env)
        assert listed.returncode == 0, listed.stderr
        [line] = listed.stdout.splitlines()
        audit_id = line.split()[0]
        assert group in line and "revoke-security-group-rules" in line
        assert "1 audit record(s)" in listed.stderr

        restored = _run(["restore", audit_id], tmp_path, env)
        assert restored.returncode == 0, restored.stderr
        outcome = json.loads(restored.stdout)
        assert outcome["group_id"] == group
        assert "ingress tcp/22 from 0.0.0.0/0" in outcome["rules_now"], "the rule came back"
    finally:
        down = _run(["local", "down"], tmp_path, base)
    assert down.returncode == 0 and "stopped the local AWS" in down.stderr
    assert not (tmp_path / ".perimeter" / "local.json").exists()
    gone = _run(["audit", "list"], tmp_path, {**base, **exports, "AWS_MAX_ATTEMPTS": "1"})
    assert gone.returncode == 2 and "cannot reach" in gone.stderr
