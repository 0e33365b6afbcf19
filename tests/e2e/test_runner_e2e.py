"""End to end: the `perimeter` command against a moto server over HTTP (127.0.0.1, free port).

The account is reached only through AWS_ENDPOINT_URL with plain boto3, as a real one would be:
the runner creates the template's resources, routes events through the template's rules, and
the handlers act on the server. Assertions are on the server's state afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from perimeter_local import cloudtrail
from perimeter_local.cli import main as cli_main
from perimeter_local.moto_ext import moto_extensions

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in [*ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(ENV)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    try:
        with moto_extensions():
            yield os.environ["AWS_ENDPOINT_URL"]
    finally:
        srv.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def group(server: str) -> dict[str, str]:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(
        GroupName=f"model-{os.urandom(3).hex()}",
        Description="model tier",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )["GroupId"]
    return {"vpc": vpc, "group": gid}


def _authorize(gid: str, perms: list[dict[str, Any]]) -> dict[str, Any]:
    ec2 = boto3.client("ec2")
    before = {r["SecurityGroupRuleId"] for r in _rules(gid)}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
    created = [r for r in _rules(gid) if r["SecurityGroupRuleId"] not in before]
    return cloudtrail.authorize_event(
        account="123456789012", region="us-east-1", group_id=gid, permissions=perms, created_rules=created
    )


def _rules(gid: str) -> list[dict[str, Any]]:
    return boto3.client("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])[
        "SecurityGroupRules"
    ]


def _write(tmp_path: Path, event: dict[str, Any]) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def test_cli_routes_event_and_remediates_over_http(
    server: str, group: dict[str, str], tmp_path: Path
) -> None:
    event = _authorize(
        group["group"],
        [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.30.0.0/16"}]},
        ],
    )
    proc = subprocess.run(
        [sys.executable, "-m", "perimeter_local.cli", "invoke", "-e", str(_write(tmp_path, event))],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert "SgGuardFunction" in summary["matched"]
    sg = next(r for r in summary["results"] if r["function"] == "SgGuardFunction")
    assert sg["ok"] and sg["result"]["status"] == "remediated"
    left = {(r.get("FromPort"), r.get("CidrIpv4")) for r in _rules(group["group"]) if not r["IsEgress"]}
    assert left == {(443, "10.30.0.0/16")}, "exactly the offending rule is gone, the harmless one stays"
    findings = boto3.client("securityhub").get_findings(MaxResults=100)["Findings"]
    mine = [f for f in findings if f["Resources"][0]["Id"].endswith(group["group"])]
    assert {f["GeneratorId"] for f in mine} >= {"PER-SG-1", "PER-SG-2"}
    assert all(
        f["Compliance"]["Status"] == "PASSED" for f in mine if f["GeneratorId"] in ("PER-SG-1", "PER-SG-2")
    )
    audit_id = sg["result"]["groups"][0]["audit_id"]
    record = json.loads(
        boto3.client("dynamodb").get_item(TableName="perimeter-AuditTable", Key={"pk": {"S": audit_id}})[
            "Item"
        ]["body"]["S"]
    )
    assert [r["cidr"] for r in record["rules"]] == ["0.0.0.0/0"]


def test_restore_puts_back_exactly_what_was_removed(
    server: str, group: dict[str, str], tmp_path: Path, capsys
) -> None:
    event = _authorize(
        group["group"],
        [{"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    assert cli_main(["invoke", "SgGuardFunction", "-e", str(_write(tmp_path, event))]) == 0
    out = json.loads(capsys.readouterr().out)
    audit_id = out["results"][0]["result"]["groups"][0]["audit_id"]
    assert not [r for r in _rules(group["group"]) if r.get("FromPort") == 3389]
    assert cli_main(["restore", audit_id]) == 0
    restored = json.loads(capsys.readouterr().out)
    assert len(restored["ingress"]["restored"]) == 1
    assert [r["CidrIpv4"] for r in _rules(group["group"]) if r.get("FromPort") == 3389] == ["0.0.0.0/0"]


#: Every sample, the Bedrock and SageMaker-domain ones and ModifyManagedPrefixList included: the
#: server carries the runner's moto extensions (local/perimeter_local/moto_ext.py), as
#: `invoke --embedded`'s does.
SAMPLES = sorted(p.name for p in (ROOT / "events").glob("*.json"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_sample_is_handled_or_rejected_clearly(server: str, sample: str, capsys) -> None:
    """Each events/ sample through the router against the server: exit 0 (a no-op included:
    the sample's resources do not exist here) or, for malformed input, a clear error."""
    code = cli_main(["invoke", "-e", str(ROOT / "events" / sample)])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    if sample.startswith("Malformed"):
        assert summary["matched"] == [] or code == 1
        return
    assert code == 0, captured.err
    for res in summary["results"]:
        assert res["ok"], res.get("error")


def test_demo_ends_with_every_check_passed(server: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "perimeter_local.cli", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    passed = re.search(r"^(\d+)/(\d+) checks passed", out, re.M)
    assert passed and passed.group(1) == passed.group(2) and int(passed.group(2)) >= 10, out[-2000:]
    assert "[FAIL]" not in out and not re.search(r" ms\): FAILED", out), "a handler failed"
    # The duplicate delivery reads as a no-op, not as a second revoke.
    dup = out.split("EventBridge delivers the first event again", 1)[1].split("\n> ", 1)[0]
    assert "no-op, duplicate delivery" in dup and "revoked" not in dup and "audit record " not in dup
    # Every "(N)" count in a heading matches the lines listed under it.
    for title in ("Security Hub findings", "SNS notifications"):
        head = re.search(rf"^== {title} \((\d+)\) ==$", out, re.M)
        assert head, title
        listed = out[head.end() :].split("\n\n", 1)[0].strip("\n").splitlines()
        entries = [x for x in listed if x.startswith("  ") and not x.startswith(("  [PASS]", "  [FAIL]"))]
        assert len(entries) == int(head.group(1)), (title, listed)
    audit = re.search(r"^== Audit trail \((\d+) records", out, re.M)
    assert audit
    entries = re.findall(r"^  \S+#\S+: ", out[audit.end() :], re.M)
    assert len(entries) == int(audit.group(1))
    # Nothing cut mid-word: long text is wrapped at word boundaries; an SNS subject (under 100
    # characters by the API) is ellipsized after a whole word (" ..."), never inside one.
    assert not [line for line in out.splitlines() if re.search(r"\S\.\.\.$", line.rstrip())]
