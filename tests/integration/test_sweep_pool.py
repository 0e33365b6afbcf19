"""The sweep on the container's pool (moto in-process, the SweepFunction's environment).

The pool's threads are started in the init phase (``Runtime.warm``); the sweep starts none of
its own, and still waits for every read and revoke it put on the pool before it returns or
raises. Its reads go out in the order the judging needs them: the listings and the undo's
exemptions first, what only the reporting needs once the listings are in; the exemptions are
always known before any revoke.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from perimeter_local.account import prepare
from perimeter_local.template import functions

from tests.harness import moto_account

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
WORLD_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
SERVICES = ("ec2", "sagemaker", "bedrock", "iam", "dynamodb", "securityhub", "sns")


@pytest.fixture
def session(monkeypatch: Any) -> Any:
    with moto_account(monkeypatch, REGION):
        yield boto3.session.Session()


def sweep_runtime(session: Any, monkeypatch: Any, *, hooks: dict[str, Any] | None = None) -> Any:
    """The SweepFunction's runtime as its init phase leaves it (clients built, pool started)."""
    from perimeter.core import runtime

    template, resolver = prepare(session, ROOT / "template.yaml", parameters={"DryRun": "false"})
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "SweepFunction")
    for k, v in spec.environment.items():
        monkeypatch.setenv(k, v)
    for event, hook in (hooks or {}).items():  # before the clients are built: they copy them
        session.events.register(event, hook)
    return runtime.Runtime(runtime.Settings.from_env(), session=session).warm(SERVICES)


def world_open_groups(session: Any, n: int) -> list[str]:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    out = []
    for i in range(n):
        gid = ec2.create_security_group(GroupName=f"open{i}", Description="d", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
        out.append(gid)
    return out


def test_the_sweep_starts_no_thread_of_its_own(session: Any, monkeypatch: Any) -> None:
    from perimeter.review import service

    groups = world_open_groups(session, 3)
    rt = sweep_runtime(session, monkeypatch)
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    out = service.handle({"id": "no-threads"}, rt)
    assert sorted(out["revoked"]) == sorted(groups)  # reads, revokes and writes all ran
    assert started == []


def test_a_failed_read_fails_the_sweep_only_once_every_read_it_started_is_over(
    session: Any, monkeypatch: Any
) -> None:
    """The undo's exemptions cannot be read: the sweep fails (it never revokes without them),
    and not before the findings ledger's read, already sent, has returned."""
    from perimeter.adapters.exemptions import ExemptionStore
    from perimeter.adapters.ledger import FindingLedger
    from perimeter.review import service

    world_open_groups(session, 2)
    rt = sweep_runtime(session, monkeypatch)
    over: list[str] = []
    snapshot = FindingLedger.snapshot

    def slow_snapshot(self: Any) -> Any:
        time.sleep(0.3)
        try:
            return snapshot(self)
        finally:
            over.append("ledger")

    def failing_scan(self: Any) -> Any:
        time.sleep(0.05)  # the listings are in: the ledger's read has been sent
        raise RuntimeError("exemptions unreadable")

    monkeypatch.setattr(FindingLedger, "snapshot", slow_snapshot)
    monkeypatch.setattr(ExemptionStore, "scan", failing_scan)
    revokes = []
    monkeypatch.setattr(
        "perimeter.adapters.inventory.InventoryAdapter.revoke", lambda *a, **k: revokes.append(a)
    )
    with pytest.raises(RuntimeError, match="exemptions unreadable"):
        service.handle({"id": "read-fails"}, rt)
    assert over == ["ledger"]  # finished before the failure came out, not left running
    assert revokes == []


def test_a_failed_revoke_fails_the_sweep_only_once_every_revoke_it_started_is_over(
    session: Any, monkeypatch: Any
) -> None:
    from perimeter.adapters.inventory import InventoryAdapter
    from perimeter.review import service

    groups = world_open_groups(session, 4)
    rt = sweep_runtime(session, monkeypatch)
    over: list[str] = []
    revoke = InventoryAdapter.revoke

    def one_fails(self: Any, group_id: str, rules: Any) -> Any:
        if group_id == groups[0]:
            raise RuntimeError("revoke refused")
        time.sleep(0.2)
        try:
            return revoke(self, group_id, rules)
        finally:
            over.append(group_id)

    monkeypatch.setattr(InventoryAdapter, "revoke", one_fails)
    with pytest.raises(RuntimeError, match="revoke refused"):
        service.handle({"id": "revoke-fails"}, rt)
    assert sorted(over) == sorted(groups[1:])


def test_the_reads_the_judging_needs_go_first_and_the_exemptions_are_in_before_any_revoke(
    session: Any, monkeypatch: Any
) -> None:
    from perimeter.review import service

    world_open_groups(session, 3)
    order: list[tuple[str, str]] = []
    lock = threading.Lock()
    sent: dict[str, str] = {}

    def scan_table(params: Any, model: Any, **kwargs: Any) -> None:
        if model.name == "Scan":
            sent[threading.current_thread().name] = params["TableName"]

    def note(what: str) -> Any:
        def hook(model: Any, **kwargs: Any) -> None:
            name = model.name
            if name == "Scan":
                name += ":" + sent.get(threading.current_thread().name, "")
            with lock:
                order.append((what, name))

        return hook

    before, after = note("sent"), note("back")

    rt = sweep_runtime(
        session,
        monkeypatch,
        hooks={"before-parameter-build": scan_table, "before-call": before, "after-call": after},
    )
    service.handle({"id": "order"}, rt)
    exemptions_table = rt.settings.exemptions_table
    ledger_table = rt.settings.findings_table
    assert exemptions_table and ledger_table

    def at(what: str, name: str) -> int:
        return order.index((what, name))

    listings = (
        "DescribeSecurityGroups",
        "DescribeRouteTables",
        "DescribeNetworkInterfaces",
        "DescribeVpcs",
        "DescribeVpcEndpoints",
        "DescribeLaunchTemplateVersions",
        "DescribeVpcPeeringConnections",
    )
    listings_back = max(at("back", op) for op in listings)
    # the exemptions go out beside the listings, not after them
    assert at("sent", f"Scan:{exemptions_table}") < listings_back
    # what only the reporting needs goes out once the listings are in
    for later in ("GetFindings", f"Scan:{ledger_table}", "GetAccountAuthorizationDetails"):
        assert at("sent", later) > listings_back, (later, order)
    # safety: the exemptions are known before anything is revoked
    first_revoke = at("sent", "RevokeSecurityGroupIngress")
    assert at("back", f"Scan:{exemptions_table}") < first_revoke
