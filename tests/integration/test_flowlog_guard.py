"""FlowLogGuard (PER-FL-1, enforce in the shipped policy) under moto: CreateVpc and the wrapped
DeleteFlowLogs, real corpus records included. Flow logs and the log group are asserted in
moto's EC2 and CloudWatch Logs. Stubbed only where named: the FlowLogAlreadyExists answer
(moto does not return it for a twin flow log).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from model_support import FLOW_LOG_GROUP, Acct, corpus, make_account, policy_with, sample
from perimeter.adapters.flowlogs import FlowLogAdapter
from perimeter.flow_logs.evaluate import FLOW_LOG_FORMAT


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


EC2 = "ec2.amazonaws.com"
ALL_VPCS = ("  scope: model-vpcs\n", "  scope: all-vpcs\n")


def _everywhere(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    """Policy flow_logs.scope: all-vpcs (a new VPC hosts no model yet: out of the default scope)."""
    policy_with(monkeypatch, acct.session, *ALL_VPCS)


def _model_tier_group(acct: Acct, vpc: str) -> str:
    return acct.client("ec2").create_security_group(  # type: ignore[no-any-return]
        GroupName="model",
        Description="model",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )["GroupId"]


def _create_vpc_event(acct: Acct, vpc_id: str) -> dict[str, Any]:
    return acct.event(
        "CreateVpc", EC2, {"cidrBlock": "10.70.0.0/16"}, {"vpc": {"vpcId": vpc_id, "state": "pending"}}
    )


def test_create_vpc_gets_a_flow_log(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    _everywhere(acct, monkeypatch)
    vpc = acct.client("ec2").create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    out = acct.flowlog(_create_vpc_event(acct, vpc))
    assert out["status"] == "remediated", out
    [fl] = acct.flow_logs(vpc)
    assert (fl["TrafficType"], fl["LogGroupName"], fl["LogFormat"]) == (
        "ALL",
        FLOW_LOG_GROUP,
        FLOW_LOG_FORMAT,
    )
    assert fl["DeliverLogsPermissionArn"] == acct.role_arn and fl["MaxAggregationInterval"] == 600
    [group] = acct.client("logs").describe_log_groups(logGroupNamePrefix=FLOW_LOG_GROUP)["logGroups"]
    assert group["retentionInDays"] == 365
    [audit] = acct.audit_records()
    assert (
        audit["restore"] == {"delete_flow_logs": [fl["FlowLogId"]]}
        and audit["request"]["TrafficType"] == "ALL"
    )
    [finding] = acct.findings()
    assert finding["GeneratorId"] == "PER-FL-1" and finding["RecordState"] == "ARCHIVED"


def test_reject_only_flow_log_is_named_and_replaced(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    _everywhere(acct, monkeypatch)
    ec2 = acct.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]
    acct.client("logs").create_log_group(logGroupName="/team/rejects")
    old = ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="REJECT",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="/team/rejects",
        DeliverLogsPermissionArn=acct.role_arn,
    )["FlowLogIds"][0]
    out = acct.flowlog(_create_vpc_event(acct, vpc))
    [issue] = out["issues"]
    assert f"{old} (REJECT traffic to /team/rejects, active)" in issue["summary"]
    assert sorted(f["TrafficType"] for f in acct.flow_logs(vpc)) == ["ALL", "REJECT"]


def test_active_all_flow_log_is_compliant_and_writes_nothing(acct: Acct) -> None:
    ec2 = acct.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.72.0.0/16")["Vpc"]["VpcId"]
    acct.client("logs").create_log_group(logGroupName="/team/all")
    ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="/team/all",
        DeliverLogsPermissionArn=acct.role_arn,
    )
    assert acct.flowlog(_create_vpc_event(acct, vpc))["status"] == "compliant"
    assert acct.audit_records() == [] and acct.findings() == [] and acct.messages() == []


def test_dry_run_detects_only(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    _everywhere(acct, monkeypatch)
    monkeypatch.setenv("PERIMETER_DRY_RUN", "true")
    vpc = acct.client("ec2").create_vpc(CidrBlock="10.73.0.0/16")["Vpc"]["VpcId"]
    out = acct.flowlog(_create_vpc_event(acct, vpc))
    assert out["status"] == "reported" and out["issues"][0]["action"] == "detected"
    assert acct.flow_logs(vpc) == [] and acct.audit_records() == []


def test_s3_destination_from_policy(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    acct.client("s3").create_bucket(Bucket="flow-logs-bucket")
    policy_with(
        monkeypatch,
        acct.session,
        "  destination: cloud-watch-logs\n",
        "  destination: s3\n  s3_bucket_arn: arn:aws:s3:::flow-logs-bucket\n  scope: all-vpcs\n",
    )
    text = acct.client("ssm").get_parameter(Name="/perimeter/policy")["Parameter"]["Value"]
    acct.client("ssm").put_parameter(
        Name="/perimeter/policy",
        Value=text.replace("  scope: model-vpcs\n", ""),
        Type="String",
        Overwrite=True,
    )
    vpc = acct.client("ec2").create_vpc(CidrBlock="10.74.0.0/16")["Vpc"]["VpcId"]
    assert acct.flowlog(_create_vpc_event(acct, vpc))["status"] == "remediated"
    [fl] = acct.flow_logs(vpc)
    assert fl["LogDestinationType"] == "s3" and fl["LogDestination"] == "arn:aws:s3:::flow-logs-bucket"


def test_create_vpc_out_of_the_default_scope_gets_nothing(acct: Acct) -> None:
    """Default flow_logs.scope (model-vpcs): a new VPC holds no model, so no flow log is made."""
    vpc = acct.client("ec2").create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    out = acct.flowlog(_create_vpc_event(acct, vpc))
    assert out["status"] == "compliant" and out["vpcs"] == []
    assert acct.flow_logs(vpc) == [] and acct.findings() == [] and acct.audit_records() == []


def test_create_vpc_sample_for_a_vpc_since_deleted(acct: Acct) -> None:
    out = acct.flowlog(sample("CreateVpc--new-vpc.json"))
    assert out["status"] == "resource-gone" and acct.audit_records() == []


def test_flow_log_already_exists_is_success() -> None:
    """Stubbed: EC2 CreateFlowLogs answering FlowLogAlreadyExists (a retry after a crash)."""
    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(ec2)
    params = {
        "ResourceIds": ["vpc-1"],
        "ResourceType": "VPC",
        "TrafficType": "ALL",
        "LogDestinationType": "s3",
        "LogDestination": "arn:aws:s3:::b",
    }
    stub.add_response(
        "create_flow_logs",
        {
            "FlowLogIds": [],
            "Unsuccessful": [
                {"Error": {"Code": "FlowLogAlreadyExists", "Message": "exists"}, "ResourceId": "vpc-1"}
            ],
        },
        params,
    )
    stub.add_client_error(
        "create_flow_logs", service_error_code="FlowLogAlreadyExists", expected_params=params
    )
    stub.add_client_error("create_flow_logs", service_error_code="InvalidParameter", expected_params=params)
    with stub:
        adapter = FlowLogAdapter(ec2, lambda: None)
        assert adapter.create(params, retention_days=365).already_existed
        assert adapter.create(params, retention_days=365).already_existed
        with pytest.raises(Exception, match="InvalidParameter"):
            adapter.create(params, retention_days=365)


# --- real CloudTrail records ---------------------------------------------------------------


@pytest.fixture
def west(monkeypatch: pytest.MonkeyPatch) -> Any:
    yield from make_account(monkeypatch, "us-west-2")


def test_corpus_delete_flow_logs_panther(west: Acct) -> None:
    """The record's flow-log id was never seen made: the model VPC that lost its log is found
    through the policy's scope and the finding says which VPC the id covered is unknown."""
    ec2 = west.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    _model_tier_group(west, vpc)
    west.client("logs").create_log_group(logGroupName="/team/all")
    [fl] = ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="/team/all",
        DeliverLogsPermissionArn=west.role_arn,
    )["FlowLogIds"]
    ec2.delete_flow_logs(FlowLogIds=[fl])
    out = west.flowlog(corpus("DeleteFlowLogs/panther-1.json"))
    assert out["deleted_flow_logs"] == ["fl-0ef673ef70c4f07cc"]
    [issue] = out["issues"]
    assert issue["resource"] == vpc and "which VPC it covered is unknown" in issue["summary"]
    assert [f["TrafficType"] for f in west.flow_logs(vpc)] == ["ALL"]
    assert out["actor"] == "arn:aws:sts::111122223333:assumed-role/SampleRole/leroy.jenkins"


def test_corpus_delete_flow_logs_stratus_other_region(acct: Acct) -> None:
    out = acct.flowlog(corpus("DeleteFlowLogs/stratus-1.json"))
    assert out["status"] == "ignored" and "megov-south-1r" in out["reason"]


def test_corpus_create_vpc_panther(west: Acct) -> None:
    """The record's vpc-1 never existed here: a clean no-op, no flow log, no write."""
    out = west.flowlog(corpus("CreateVpc/panther-1.json"))
    assert out["status"] == "resource-gone" and out["gone"] == ["VPC vpc-1"]
    assert west.audit_records() == []


def test_audit_record_undoes_the_flow_log(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    _everywhere(acct, monkeypatch)
    from perimeter.restore.flowlog import restore_flow_log

    vpc = acct.client("ec2").create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    acct.flowlog(_create_vpc_event(acct, vpc))
    [record] = acct.audit_records()
    crashed = dict(record, flow_log_ids=[])  # written ahead, the crash came before the id
    out = restore_flow_log(acct.session, crashed)
    assert out["deleted_flow_logs"] == record["flow_log_ids"] and acct.flow_logs(vpc) == []
