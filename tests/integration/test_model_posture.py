"""ModelPosture end to end under moto: the DeepSeek-R1 deployment done the unsafe way yields one
finding per problem, each naming its chain and fix, and the flow log is created; the safe
deployment yields none and writes nothing.

Stubbed parts (moto gaps, FACTS.md) are named in each test: SageMaker's network-isolation
read-back (moto always answers False), and every Bedrock call (guardrails, Marketplace
endpoints, imported models are not in moto).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from model_support import ACCOUNT, Acct, Deployment, corpus, make_account, model_role, sample
from perimeter.flow_logs.evaluate import FLOW_LOG_FORMAT


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


SM = "sagemaker.amazonaws.com"
BR = "bedrock.amazonaws.com"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _create_model(
    acct: Acct, name: str, dep: Deployment | None, groups: list[str] | None = None, isolation: bool = False
) -> dict[str, Any]:
    sm = acct.client("sagemaker")
    role = model_role(acct.client("iam"), f"role-{name}")
    kwargs: dict[str, Any] = {
        "ModelName": name,
        "PrimaryContainer": {
            "Image": IMAGE,
            "Environment": {"HF_MODEL_ID": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"},
        },
        "ExecutionRoleArn": role,
        "EnableNetworkIsolation": isolation,
    }
    request: dict[str, Any] = {
        "modelName": name,
        "primaryContainer": {"image": IMAGE},
        "executionRoleArn": role,
        "enableNetworkIsolation": isolation,
    }
    if dep is not None:
        vpc = {"Subnets": [dep.private_subnet], "SecurityGroupIds": groups or [dep.model_sg]}
        kwargs["VpcConfig"] = vpc
        request["vpcConfig"] = {"subnets": vpc["Subnets"], "securityGroupIds": vpc["SecurityGroupIds"]}
    arn = sm.create_model(**kwargs)["ModelArn"]
    return acct.event("CreateModel", SM, request, {"modelArn": arn})


def _create_endpoint(acct: Acct, name: str, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    sm = acct.client("sagemaker")
    variants = [
        {
            "VariantName": "AllTraffic",
            "ModelName": model,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.g4dn.2xlarge",
        }
    ]
    cfg_arn = sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=variants)[
        "EndpointConfigArn"
    ]
    cfg_event = acct.event(
        "CreateEndpointConfig",
        SM,
        {
            "endpointConfigName": f"{name}-config",
            "productionVariants": [{"variantName": "AllTraffic", "modelName": model}],
        },
        {"endpointConfigArn": cfg_arn},
    )
    ep_arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")["EndpointArn"]
    ep_event = acct.event(
        "CreateEndpoint",
        SM,
        {"endpointName": name, "endpointConfigName": f"{name}-config"},
        {"endpointArn": ep_arn},
    )
    return cfg_event, ep_event


def test_unsafe_deepseek_outside_vpc_one_finding_per_problem(acct: Acct) -> None:
    _create_model(acct, "deepseek-r1-distill-8b", None)
    _, ep_event = _create_endpoint(acct, "deepseek-r1", "deepseek-r1-distill-8b")
    out = acct.model(ep_event)
    assert out["status"] == "reported", out
    controls = sorted(i["control"] for i in out["issues"])
    assert controls == ["PER-VPC-1", "PER-VPC-2"], out["issues"]
    chain = "endpoint deepseek-r1 -> endpoint config deepseek-r1-config -> model deepseek-r1-distill-8b"
    assert all(i["chain"] == chain for i in out["issues"])
    found = acct.by_control()
    assert set(found) == {"PER-VPC-1", "PER-VPC-2"}
    vpc1 = found["PER-VPC-1"][0]
    assert chain in vpc1["Description"] and "VpcConfig" in vpc1["Remediation"]["Recommendation"]["Text"]
    assert vpc1["Compliance"]["Status"] == "FAILED" and vpc1["Severity"]["Label"] == "HIGH"
    [note] = acct.messages()
    assert {d["control"] for d in note["decisions"]} == {"PER-VPC-1", "PER-VPC-2"}
    assert all(d["fix"] and d["chain"] for d in note["decisions"])
    assert acct.audit_records() == []  # detect only: nothing changed, nothing recorded


def test_unsafe_deepseek_in_vpc_shared_sg_no_flow_log(acct: Acct) -> None:
    """In a VPC but isolation off, no runtime endpoint, the database's SG, no flow log."""
    dep = acct.deployment()
    _create_model(acct, "deepseek-r1-shared", dep, groups=[dep.db_sg])
    _, ep_event = _create_endpoint(acct, "deepseek-r1-shared", "deepseek-r1-shared")
    out = acct.model(ep_event)
    assert out["status"] == "remediated", out
    by = {(i["control"], i["resource"]) for i in out["issues"]}
    assert by == {
        ("PER-VPC-2", "model/deepseek-r1-shared"),  # no network isolation
        ("PER-VPC-2", dep.vpc_id),  # no sagemaker.runtime endpoint
        ("PER-TIER-1", dep.db_sg),  # the database tier's group
        ("PER-FL-1", dep.vpc_id),  # created below
        ("PER-SG-4", dep.db_sg),  # 0.0.0.0/0 egress judged as the model tier it serves
    }
    tier = next(i for i in out["issues"] if i["control"] == "PER-TIER-1")
    assert tier["chain"].endswith(f"model deepseek-r1-shared -> {dep.db_sg}")
    assert "database tier" in tier["summary"]
    # PER-FL-1 in enforce: the flow log exists in AWS afterwards, ALL traffic, custom format.
    [fl] = acct.flow_logs(dep.vpc_id)
    assert fl["TrafficType"] == "ALL" and fl["LogGroupName"] == "/perimeter/perimeter/vpc-flow-logs"
    assert fl["LogFormat"] == FLOW_LOG_FORMAT and fl["DeliverLogsPermissionArn"] == acct.role_arn
    for field in ("${flow-direction}", "${pkt-srcaddr}", "${pkt-dstaddr}", "${traffic-path}"):
        assert field in fl["LogFormat"]
    group = acct.client("logs").describe_log_groups(logGroupNamePrefix="/perimeter/perimeter/vpc-flow-logs")[
        "logGroups"
    ][0]
    assert group["retentionInDays"] == 365
    [audit] = acct.audit_records()
    assert audit["action"] == "create-flow-log" and audit["flow_log_ids"] == [fl["FlowLogId"]]
    found = acct.by_control()
    fl_finding = found["PER-FL-1"][0]
    assert fl_finding["Compliance"]["Status"] == "PASSED" and "created flow log" in fl_finding["Description"]
    assert len(acct.messages()) == 1  # one message for the whole decision


def test_duplicate_event_creates_nothing_twice(acct: Acct) -> None:
    dep = acct.deployment()
    event = _create_model(acct, "dup", dep, isolation=True)
    first = acct.model(event)
    assert first["status"] == "remediated"
    again = acct.model(event)
    assert again == first
    assert len(acct.flow_logs(dep.vpc_id)) == 1 and len(acct.audit_records()) == 1


def test_safe_deployment_produces_nothing(acct: Acct) -> None:
    """Stubbed: SageMaker describe_endpoint_config/describe_model on the CreateEndpoint path,
    because moto reads EnableNetworkIsolation back as False (FACTS.md). EC2, flow logs,
    Security Hub, SNS and DynamoDB are moto."""
    dep = acct.deployment(flow_log=True, runtime_endpoint=True)
    model_event = _create_model(acct, "deepseek-r1-safe", dep, isolation=True)
    out = acct.model(model_event)
    assert out["status"] == "compliant", out
    _, ep_event = _create_endpoint(acct, "deepseek-r1-safe", "deepseek-r1-safe")
    stub = acct.stub("sagemaker")
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": "deepseek-r1-safe-config",
            "EndpointConfigArn": (
                f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/deepseek-r1-safe-config"
            ),
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "deepseek-r1-safe"}],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": "deepseek-r1-safe-config"},
    )
    stub.add_response(
        "describe_model",
        {
            "ModelName": "deepseek-r1-safe",
            "ModelArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/deepseek-r1-safe",
            "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/x",
            "CreationTime": NOW,
            "EnableNetworkIsolation": True,
            "VpcConfig": {"Subnets": [dep.private_subnet], "SecurityGroupIds": [dep.model_sg]},
        },
        {"ModelName": "deepseek-r1-safe"},
    )
    out = acct.model(ep_event)
    stub.assert_no_pending_responses()
    assert out["status"] == "compliant", out
    assert acct.findings() == [] and acct.messages() == [] and acct.audit_records() == []
    assert len(acct.flow_logs(dep.vpc_id)) == 1


def test_update_endpoint_follows_the_new_config(acct: Acct) -> None:
    """moto has no update_endpoint: the record is built from the API shape and the config it
    names exists in moto; nothing is stubbed."""
    _create_model(acct, "m-new", None)
    sm = acct.client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="cfg-v2",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m-new",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.2xlarge",
            }
        ],
    )
    event = acct.event(
        "UpdateEndpoint",
        SM,
        {"endpointName": "ep", "endpointConfigName": "cfg-v2"},
        {"endpointArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ep"},
    )
    out = acct.model(event)
    assert {i["chain"] for i in out["issues"]} == {"endpoint ep -> endpoint config cfg-v2 -> model m-new"}


def test_notebook_with_direct_internet(acct: Acct) -> None:
    role = model_role(acct.client("iam"), "nb-role")
    acct.client("sagemaker").create_notebook_instance(
        NotebookInstanceName="deepseek-eval",
        InstanceType="ml.t3.medium",
        RoleArn=role,
        DirectInternetAccess="Enabled",
    )
    event = sample("CreateNotebookInstance--direct-internet.json")
    out = acct.model(event)
    [issue] = out["issues"]
    assert issue["control"] == "PER-VPC-1" and "DirectInternetAccess=Enabled" in issue["summary"]
    assert "SubnetId" in issue["summary"]


def test_deleted_model_is_a_clean_no_op(acct: Acct) -> None:
    out = acct.model(sample("CreateModel--deepseek-r1-outside-vpc.json"))
    assert out["status"] == "resource-gone" and out["gone"] == ["model deepseek-r1-distill-8b"]
    assert acct.findings() == []


@pytest.mark.parametrize("name", ["CreateModel--failed-call.json", "CreateEndpoint--perimeter-own-role.json"])
def test_negative_samples_are_ignored(acct: Acct, name: str) -> None:
    out = acct.model(sample(name))
    assert out["status"] == "ignored"


# --- real CloudTrail records ---------------------------------------------------------------


@pytest.fixture
def west(monkeypatch: pytest.MonkeyPatch) -> Any:
    yield from make_account(monkeypatch, "us-west-2")


def test_corpus_create_model_through_handler(west: Acct) -> None:
    """awsdocs CreateModel (us-west-2, no VpcConfig): the model it names is created in moto."""
    rec = corpus("CreateModel/awsdocs-sagemaker-1.json")
    assert acct_model(west, "ExampleModel")
    out = west.model(rec)
    assert [i["control"] for i in out["issues"]] == ["PER-VPC-1", "PER-VPC-2"]
    assert out["issues"][0]["chain"] == "model ExampleModel"
    assert out["actor"] == "arn:aws:iam::123456789012:user/intern"


def test_corpus_create_endpoint_through_handler(west: Acct) -> None:
    rec = corpus("CreateEndpoint/awsdocs-sagemaker-1.json")
    acct_model(west, "ExampleModel")
    west.client("sagemaker").create_endpoint_config(
        EndpointConfigName="ExampleEndpointConfig",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": "ExampleModel",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    out = west.model(rec)
    assert {i["chain"] for i in out["issues"]} == {
        "endpoint ExampleEndpoint -> endpoint config ExampleEndpointConfig -> model ExampleModel"
    }
    # without the resources (deleted since): a clean no-op
    west.client("sagemaker").delete_endpoint_config(EndpointConfigName="ExampleEndpointConfig")
    second = dict(rec, eventID="other-id")
    assert west.model(second)["status"] == "resource-gone"


def acct_model(a: Acct, name: str) -> str:
    role = model_role(a.client("iam"), f"role-{name}")
    return a.client("sagemaker").create_model(  # type: ignore[no-any-return]
        ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=role
    )["ModelArn"]


class _Calls:
    """Every botocore call made while installed, as ``service:Operation``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from botocore.client import BaseClient

        self.ops: list[str] = []
        original = BaseClient._make_api_call
        ops = self.ops

        def spy(client: Any, operation: str, params: Any) -> Any:
            ops.append(f"{client.meta.service_model.signing_name}:{operation}")
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", spy)


def test_aws_calls_per_event(acct: Acct, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads are one per resource on the chain; writes only on the violating path."""
    dep = acct.deployment(flow_log=True, runtime_endpoint=True)
    safe = _create_model(acct, "calls-safe", dep, isolation=True)
    unsafe_dep = acct.deployment()
    _create_model(acct, "calls-unsafe", unsafe_dep, groups=[unsafe_dep.db_sg])
    _, unsafe = _create_endpoint(acct, "calls-unsafe", "calls-unsafe")
    calls = _Calls(monkeypatch)
    assert acct.model(safe)["status"] == "compliant"
    # the container's first group read fetches the region's route tables beside it
    calls.ops[3:5] = sorted(calls.ops[3:5])
    assert calls.ops == [
        "sagemaker:DescribeModel",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeFlowLogs",
        # Is a finding of these resources still active? (a person may have fixed them: resolve)
        "securityhub:GetFindings",
    ]
    calls.ops.clear()
    assert acct.model(unsafe)["status"] == "remediated"
    reads = [op for op in calls.ops if op.split(":")[1].startswith(("Describe", "GetFindings"))]
    writes = sorted(op for op in calls.ops if op not in reads)
    # no DescribeRouteTables: the first event's region-wide read cached this VPC too
    assert reads == [
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DescribeModel",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeFlowLogs",
        "securityhub:GetFindings",
    ]
    assert writes == sorted(
        [
            "dynamodb:TransactWriteItems",  # idempotency claim + write-ahead audit, one write
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
            "ec2:CreateFlowLogs",
            "dynamodb:PutItem",  # audit record completed with the flow-log id
            "dynamodb:PutItem",  # flow-log index: which VPC the new flow log covers
            "dynamodb:PutItem",  # the report, kept until sent (a retry would find nothing to do)
            "dynamodb:DeleteItem",  # ... and dropped once sent
            "securityhub:BatchImportFindings",
            "sns:Publish",
            "dynamodb:PutItem",  # idempotency completed (the whole record, on condition the claim is ours)
        ]
    )


def test_model_sg_shared_with_a_database_eni(acct: Acct) -> None:
    """The model's own (model-tier) group also sits on an ENI with the database's group."""
    dep = acct.deployment(flow_log=True, runtime_endpoint=True)
    acct.client("ec2").create_network_interface(
        SubnetId=dep.private_subnet, Groups=[dep.model_sg, dep.db_sg], Description="RDSNetworkInterface"
    )
    out = acct.model(_create_model(acct, "eni-shared", dep, isolation=True))
    [issue] = out["issues"]
    assert issue["control"] == "PER-TIER-1" and issue["resource"] == dep.model_sg
    assert (
        f"also carries {dep.db_sg} (database tier)" in issue["summary"]
        and "RDSNetworkInterface" in issue["summary"]
    )
