"""End to end: `perimeter sweep` as a command, against a moto server over HTTP.

The account is reached only through AWS_ENDPOINT_URL; the command creates the template's
resources, runs SweepFunction's handler with the template's environment and prints a JSON
summary; the server's state is read back afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

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
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer
    from perimeter_local.moto_gaps import serve_marketplace_listing

    serve_marketplace_listing()  # moto lacks ListMarketplaceModelEndpoints; the sweep asks it
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.stop()


def _cli(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({**ENV, "AWS_ENDPOINT_URL": endpoint})
    return subprocess.run(
        [sys.executable, "-m", "perimeter_local.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _client(endpoint: str, service: str) -> object:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        **{
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        },
    )


def test_the_sweep_command_revokes_what_no_event_reported_and_reports_json(endpoint: str) -> None:
    ec2 = _client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
        ],
    )
    proc = _cli(endpoint, "sweep", "--parameter-overrides", "DryRun=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["function"] == "SweepFunction" and summary["schedule"] == ["rate(1 day)"]
    result = summary["result"]
    assert result["status"] == "swept" and gid in result["revoked"]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])
    assert [r for r in rules["SecurityGroupRules"] if not r["IsEgress"]] == []
    hub = _client(endpoint, "securityhub")
    found = {f["Id"]: f for f in hub.get_findings(MaxResults=100)["Findings"]}
    sg1 = found[f"perimeter/PER-SG-1/123456789012/us-east-1/{gid}"]
    assert (sg1["Compliance"]["Status"], sg1["RecordState"]) == ("PASSED", "ARCHIVED")
    # A second sweep finds nothing new to do.
    again = json.loads(_cli(endpoint, "sweep").stdout)["result"]
    assert again["revoked"] == {} and again["counts"]["findings_new"] == 0


def test_sweep_embedded_shows_the_review() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [sys.executable, "-m", "perimeter_local.cli", "sweep", "--embedded"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)["result"]
    controls = {line.split()[1] for line in result["lines"]}
    assert {"PER-SG-1", "PER-REV-1", "PER-REV-2", "PER-FL-1"} <= controls
    assert result["counts"]["rules_revoked"] >= 1
