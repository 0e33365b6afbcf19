"""PER-FL-1 tells each VPC's state (issues 8 and 9): DeleteFlowLogs acts on the VPC whose flow
log was deleted (found through Perimeter's flow-log index) and on the VPCs the policy scopes,
never on every VPC of the region; CreateFlowLogs and DeleteVpc resolve the finding and write
nothing to EC2. Real FlowLogGuard handler on moto; flow logs and findings read back.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from model_support import ACCOUNT, Acct, make_account, sample


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


def _fid(vpc: str) -> str:
    return f"perimeter/PER-FL-1/{ACCOUNT}/us-east-1/{vpc}"


def _state(acct: Acct, vpc: str) -> tuple[str, str, str] | None:
    found = [f for f in acct.findings() if f["Id"] == _fid(vpc)]
    if not found:
        return None
    f = found[0]
    return f["Compliance"]["Status"], f["Workflow"]["Status"], f["RecordState"]


def _model_vpc(acct: Acct, cidr: str) -> str:
    ec2 = acct.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.create_security_group(
        GroupName="model",
        Description="model tier",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )
    return vpc


def _person_creates_flow_log(acct: Acct, vpc: str, traffic: str = "ALL") -> tuple[str, dict[str, Any]]:
    """A person's CreateFlowLogs, made in moto, and its CloudTrail record (the sample's shape)."""
    # One log group per flow log: moto refuses a second flow log to the same destination.
    group = f"/team/flow-logs/{vpc}/{traffic}/{uuid.uuid4().hex[:8]}"
    acct.client("logs").create_log_group(logGroupName=group)
    [fl] = acct.client("ec2").create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType=traffic,
        LogDestinationType="cloud-watch-logs",
        LogGroupName=group,
        DeliverLogsPermissionArn=acct.role_arn,
    )["FlowLogIds"]
    event = copy.deepcopy(sample("CreateFlowLogs--vpc-all-traffic.json"))
    detail = event["detail"]
    detail["eventID"] = f"create-{fl}"
    req = detail["requestParameters"]["CreateFlowLogsRequest"]
    req["ResourceId"]["content"] = vpc
    req["TrafficType"] = traffic
    req["LogGroupName"] = group
    detail["responseElements"]["CreateFlowLogsResponse"]["flowLogIdSet"] = {"item": fl}
    return fl, event


def _delete_event(acct: Acct, fl: str) -> dict[str, Any]:
    event = copy.deepcopy(sample("DeleteFlowLogs--wrapped-request.json"))
    event["detail"]["eventID"] = f"delete-{fl}"
    event["detail"]["requestParameters"]["DeleteFlowLogsRequest"]["FlowLogId"]["content"] = fl
    return event


def test_delete_flow_logs_acts_on_the_vpc_whose_log_was_deleted_only(acct: Acct) -> None:
    """Before: every VPC of the region without a flow log got one (the default VPC and a VPC no
    model uses included) and each was told the deleted flow log was its own."""
    ec2 = acct.client("ec2")
    model_vpc = _model_vpc(acct, "10.60.0.0/16")
    other_model_vpc = _model_vpc(acct, "10.61.0.0/16")
    _, keep_event = _person_creates_flow_log(acct, other_model_vpc)
    bare = ec2.create_vpc(CidrBlock="10.62.0.0/16")["Vpc"]["VpcId"]
    [default_vpc] = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]]
    fl, create_event = _person_creates_flow_log(acct, model_vpc)
    assert acct.flowlog(create_event)["status"] == "compliant"  # indexed, nothing to report
    acct.flowlog(keep_event)

    ec2.delete_flow_logs(FlowLogIds=[fl])
    out = acct.flowlog(_delete_event(acct, fl))
    assert out["deleted_from"] == {fl: model_vpc}
    [issue] = out["issues"]
    assert issue["resource"] == model_vpc and f"Flow log {fl} was deleted" in issue["summary"]
    assert [f["TrafficType"] for f in acct.flow_logs(model_vpc)] == ["ALL"]  # enforce: back
    assert acct.flow_logs(bare) == [] and acct.flow_logs(default_vpc) == []
    assert len(acct.flow_logs(other_model_vpc)) == 1
    assert {f["Id"] for f in acct.findings()} == {_fid(model_vpc)}


def test_deleted_log_of_a_vpc_outside_the_scope_is_still_that_vpcs(acct: Acct) -> None:
    """The VPC whose flow log was deleted is judged even when no model uses it: it had coverage."""
    plain = acct.client("ec2").create_vpc(CidrBlock="10.63.0.0/16")["Vpc"]["VpcId"]
    fl, create_event = _person_creates_flow_log(acct, plain)
    acct.flowlog(create_event)
    acct.client("ec2").delete_flow_logs(FlowLogIds=[fl])
    out = acct.flowlog(_delete_event(acct, fl))
    assert [i["resource"] for i in out["issues"]] == [plain]
    assert len(acct.flow_logs(plain)) == 1


def test_create_flow_logs_resolves_and_writes_nothing(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERIMETER_DRY_RUN", "true")  # detect only: the finding stays open
    vpc = _model_vpc(acct, "10.64.0.0/16")
    fl0, first = _person_creates_flow_log(acct, vpc)
    acct.flowlog(first)
    acct.client("ec2").delete_flow_logs(FlowLogIds=[fl0])
    acct.flowlog(_delete_event(acct, fl0))
    assert _state(acct, vpc) == ("FAILED", "NEW", "ACTIVE")
    created = next(f["CreatedAt"] for f in acct.findings() if f["Id"] == _fid(vpc))

    # REJECT-only does not cover the VPC: still ACTIVE, the weak log named.
    weak, weak_event = _person_creates_flow_log(acct, vpc, "REJECT")
    acct.flowlog(weak_event)
    assert _state(acct, vpc) == ("FAILED", "NEW", "ACTIVE")
    [f] = [f for f in acct.findings() if f["Id"] == _fid(vpc)]
    assert weak in f["Description"] and f["CreatedAt"] == created

    good, good_event = _person_creates_flow_log(acct, vpc, "ALL")
    out = acct.flowlog(good_event)
    assert out["resolved"] == [_fid(vpc)]
    assert _state(acct, vpc) == ("PASSED", "RESOLVED", "ARCHIVED")
    assert sorted(f["FlowLogId"] for f in acct.flow_logs(vpc)) == sorted([weak, good])  # no write
    assert acct.audit_records() == []


def test_delete_vpc_resolves(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERIMETER_DRY_RUN", "true")
    vpc = _model_vpc(acct, "10.65.0.0/16")
    fl, first = _person_creates_flow_log(acct, vpc)
    acct.flowlog(first)
    ec2 = acct.client("ec2")
    ec2.delete_flow_logs(FlowLogIds=[fl])
    acct.flowlog(_delete_event(acct, fl))
    assert _state(acct, vpc) == ("FAILED", "NEW", "ACTIVE")
    for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]:
        if g["GroupName"] != "default":
            ec2.delete_security_group(GroupId=g["GroupId"])
    ec2.delete_vpc(VpcId=vpc)
    event = copy.deepcopy(sample("DeleteVpc--model-vpc.json"))
    event["detail"]["requestParameters"]["vpcId"] = vpc
    out = acct.flowlog(event)
    assert out["resolved"] == [_fid(vpc)]
    assert _state(acct, vpc) == ("PASSED", "RESOLVED", "ARCHIVED")


def test_create_flow_logs_in_enforce_reports_but_never_creates(acct: Acct) -> None:
    """A REJECT-only flow log made by a person leaves the VPC uncovered: the finding says so,
    but the fixing call's event makes no write (the CreateVpc / DeleteFlowLogs events do)."""
    vpc = _model_vpc(acct, "10.66.0.0/16")
    weak, event = _person_creates_flow_log(acct, vpc, "REJECT")
    out = acct.flowlog(event)
    assert out["status"] == "reported" and [i["action"] for i in out["issues"]] == ["detected"]
    assert [f["FlowLogId"] for f in acct.flow_logs(vpc)] == [weak] and acct.audit_records() == []
    assert _state(acct, vpc) == ("FAILED", "NEW", "ACTIVE")
