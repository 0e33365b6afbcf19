"""PER-EXM-1 (a malformed ``perimeter:exempt`` tag) keeps the finding lifecycle of the other
controls (issue 11): its first times come from the findings ledger, on the event path and in the
sweep alike, and a tag fixed since resolves the finding, whichever way comes first.

Every function runs through the local runner with the environment ``template.yaml`` gives it
(the ledger is ``PERIMETER_FINDINGS_TABLE``), on moto; findings are read back from Security Hub.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from perimeter_local import cloudtrail
from perimeter_local.cli import scheduled_event

from tests.harness import moto_account
from tests.integration.test_undo_stack import ACCOUNT, REGION, run

TAG = "perimeter:exempt"
BAD = "PER-SG-1 until=someday reason=partner"  # not a date: protects nothing
OFFICE = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}


@pytest.fixture
def session(monkeypatch: Any) -> Any:
    with moto_account(monkeypatch, REGION):
        yield boto3.session.Session()


def tagged_group(session: Any, value: str) -> str:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.95.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_security_group(  # type: ignore[no-any-return]
        GroupName="partner",
        Description="partner",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": TAG, "Value": value}]}],
    )["GroupId"]


def rule(port: int) -> dict[str, Any]:
    return dict(OFFICE, FromPort=port, ToPort=port)


def authorize(session: Any, gid: str, *, port: int = 443) -> dict[str, Any]:
    """A harmless rule added by a person (the event that has SgGuard look at the group)."""
    perm = rule(port)
    resp = session.client("ec2").authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    return cloudtrail.authorize_event(
        account=ACCOUNT,
        region=REGION,
        group_id=gid,
        permissions=[perm],
        created_rules=resp["SecurityGroupRules"],
    )


def revoke(session: Any, gid: str, perm: dict[str, Any]) -> dict[str, Any]:
    """A person removes a rule: a call that may fix something (SgGuard resolves what it can)."""
    from perimeter.core.events import wrap_in_envelope

    session.client("ec2").revoke_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    request = {"groupId": gid, "ipPermissions": {"items": [cloudtrail._ct_permission(perm)]}}
    return wrap_in_envelope(
        cloudtrail.record(
            "RevokeSecurityGroupIngress",
            "ec2.amazonaws.com",
            request,
            {"_return": True},
            account=ACCOUNT,
            region=REGION,
        )
    )


def exm(session: Any, gid: str) -> dict[str, Any]:
    [f] = [
        f
        for f in session.client("securityhub").get_findings()["Findings"]
        if f["Id"] == f"perimeter/PER-EXM-1/{ACCOUNT}/{REGION}/{gid}"
    ]
    return f


def state(f: dict[str, Any]) -> tuple[str, str]:
    return f["Compliance"]["Status"], f["RecordState"]


def retag(session: Any, gid: str, value: str | None) -> None:
    ec2 = session.client("ec2")
    if value is None:
        ec2.delete_tags(Resources=[gid], Tags=[{"Key": TAG}])
    else:
        ec2.create_tags(Resources=[gid], Tags=[{"Key": TAG, "Value": value}])


def test_an_event_keeps_the_first_times_and_a_fixed_tag_resolves_on_the_next_fix(session: Any) -> None:
    gid = tagged_group(session, BAD)
    # a harmless call still reports the malformed tag (it protects nothing)
    out = run(session, "SgGuardFunction", authorize(session, gid, port=443))
    assert out["status"] == "reported", out
    first = exm(session, gid)
    assert state(first) == ("FAILED", "ACTIVE") and first["FirstObservedAt"] == first["CreatedAt"]

    time.sleep(0.01)  # the ledger's times are the processing times (ms): let the clock move
    run(session, "SgGuardFunction", authorize(session, gid, port=8443))  # later, still malformed
    again = exm(session, gid)
    assert state(again) == ("FAILED", "ACTIVE")
    assert (again["CreatedAt"], again["FirstObservedAt"]) == (first["CreatedAt"], first["FirstObservedAt"])
    assert again["UpdatedAt"] > first["UpdatedAt"]

    retag(session, gid, "PER-SG-1 until=2026-12-31 reason=partner SFTP")  # fixed
    out = run(session, "SgGuardFunction", revoke(session, gid, rule(8443)))
    assert out["status"] == "resolved", out
    fixed = exm(session, gid)
    assert state(fixed) == ("PASSED", "ARCHIVED")
    assert fixed["CreatedAt"] == first["CreatedAt"]
    assert "parses now" in fixed["Description"]


def test_the_sweep_keeps_an_events_first_times_and_resolves_a_removed_tag(session: Any) -> None:
    gid = tagged_group(session, BAD)
    run(session, "SgGuardFunction", authorize(session, gid))
    first = exm(session, gid)
    sweep = scheduled_event(ACCOUNT, REGION, "perimeter-sweep")

    time.sleep(0.01)
    out = run(session, "SweepFunction", sweep)
    swept = exm(session, gid)
    assert state(swept) == ("FAILED", "ACTIVE")
    assert (swept["CreatedAt"], swept["FirstObservedAt"]) == (first["CreatedAt"], first["FirstObservedAt"])
    assert any("PER-EXM-1" in line and gid in line for line in out["lines"])

    retag(session, gid, None)  # removed: nothing to parse, nothing exempt
    run(session, "SweepFunction", sweep)
    assert state(exm(session, gid)) == ("PASSED", "ARCHIVED")
    # and the next event finds the ledger agreeing: no FAILED finding comes back
    assert run(session, "SgGuardFunction", authorize(session, gid, port=8443))["status"] == "compliant"
    assert state(exm(session, gid)) == ("PASSED", "ARCHIVED")


def test_a_sweep_first_then_an_event_keeps_the_sweeps_first_times(session: Any) -> None:
    gid = tagged_group(session, BAD)
    run(session, "SweepFunction", scheduled_event(ACCOUNT, REGION, "perimeter-sweep"))
    first = exm(session, gid)
    time.sleep(0.01)
    run(session, "SgGuardFunction", authorize(session, gid))
    later = exm(session, gid)
    assert state(later) == ("FAILED", "ACTIVE") and later["UpdatedAt"] > first["UpdatedAt"]  # re-reported
    assert (later["CreatedAt"], later["FirstObservedAt"]) == (first["CreatedAt"], first["FirstObservedAt"])
