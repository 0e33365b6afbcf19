"""What a person sees when something is missing: one line naming it and what to set, a
non-zero exit, no traceback. Run as a user runs it: the ``perimeter`` module in a subprocess
with a controlled environment (no AWS variables unless the case sets them)."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from perimeter_local.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "events/AuthorizeSecurityGroupIngress--world-ssh.json"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    # No config or credentials file of this machine may answer for the missing settings.
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.update(extra)
    return env


def _perimeter(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perimeter_local.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("perimeter:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _free_port() -> int:
    # A port nothing listens on: bound then released (the unreachable endpoint).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_region() -> None:
    line = _one_line(
        _perimeter(["invoke", "-e", SAMPLE], _clean_env(AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b"))
    )
    assert "no AWS region" in line and "AWS_DEFAULT_REGION" in line


def test_missing_credentials() -> None:
    line = _one_line(_perimeter(["audit", "list"], _clean_env(AWS_DEFAULT_REGION="us-east-1")))
    assert "no AWS credentials" in line and "AWS_ACCESS_KEY_ID" in line


def test_unreachable_endpoint() -> None:
    env = _clean_env(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="a",
        AWS_SECRET_ACCESS_KEY="b",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_free_port()}",
        AWS_MAX_ATTEMPTS="1",
    )
    line = _one_line(_perimeter(["audit", "list"], env))
    assert "cannot reach http://127.0.0.1:" in line and "AWS_ENDPOINT_URL" in line


def test_event_that_is_not_json() -> None:
    line = _one_line(_perimeter(["invoke", "-e", "-", "--embedded"], _clean_env(), stdin="not json {"))
    assert "is not JSON" in line and "events/" in line


def test_detail_null() -> None:
    event = (
        '{"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": null}'
    )
    line = _one_line(_perimeter(["invoke", "-e", "-", "--embedded"], _clean_env(), stdin=event))
    assert '"detail": null' in line and "CloudTrail record" in line


def test_missing_event_file() -> None:
    line = _one_line(_perimeter(["invoke", "-e", "events/no-such.json", "--embedded"], _clean_env()))
    assert "cannot read event events/no-such.json" in line


def test_stage_refuses_a_remote_account() -> None:
    env = _clean_env(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")
    line = _one_line(_perimeter(["invoke", "-e", SAMPLE, "--stage"], env))
    assert "only against a local account" in line


def _actions(parser: argparse.ArgumentParser, path: str = "perimeter") -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            out.append((path, action))
    return out


def test_every_option_has_help_text() -> None:
    actions = _actions(build_parser())
    assert len(actions) > 10
    missing = [f"{path}: {a.option_strings or a.dest}" for path, a in actions if not a.help]
    assert missing == []


def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M)
    assert phony
    targets = phony.group(1).split()
    defined = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    assert defined <= set(targets) | {"help"}, "every named target is .PHONY (and so listed below)"
    proc = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    listed = set(re.findall(r"^make ([\w-]+)", proc.stdout, re.M))
    assert set(targets) <= listed, set(targets) - listed


@pytest.mark.parametrize(
    "command", [["--help"], ["invoke", "--help"], ["local", "--help"], ["audit", "--help"]]
)
def test_help_runs(command: list[str]) -> None:
    proc = _perimeter(command, _clean_env())
    assert proc.returncode == 0 and "usage: perimeter" in proc.stdout
