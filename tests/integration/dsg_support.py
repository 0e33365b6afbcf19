"""Shared set-up for the default-SG tests: a moto account with Perimeter's tables, a VPC whose
default SG has dependants, the real handler, and a fault-injecting EC2 client.

moto gaps handled here by building the real AWS shape explicitly (FACTS.md): a default SG in
real AWS holds "all traffic from itself" ingress; moto's has none, so ``build_vpc`` adds it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import perimeter.core.runtime as runtime
import pytest
from moto import mock_aws

from tests.harness import audit_records, create_stack_resources, drain_messages

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
SELF_ROLE = "perimeter-default-sg-us-east-1"
AUDIT_TABLE = "perimeter-audit"
IDEMPOTENCY_TABLE = "perimeter-idempotency"


class FakeContext:
    function_name = "perimeter-default-sg"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:perimeter-default-sg"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def load_handler() -> Any:
    spec = importlib.util.spec_from_file_location(
        "default_sg_app", ROOT / "functions" / "default_sg" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


@dataclass
class Account:
    session: Any
    ec2: Any
    queue_url: str
    handler: Any

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler(event, FakeContext())  # type: ignore[no-any-return]

    def messages(self) -> list[dict[str, Any]]:
        return drain_messages(self.session.client("sqs"), self.queue_url)

    def findings(self) -> list[dict[str, Any]]:
        return self.session.client("securityhub").get_findings()["Findings"]  # type: ignore[no-any-return]

    def audit_records(self) -> list[dict[str, Any]]:
        return audit_records(self.session.client("dynamodb"), AUDIT_TABLE)


ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "PERIMETER_AUDIT_TABLE": AUDIT_TABLE,
    "PERIMETER_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
    "PERIMETER_SELF_ROLES": SELF_ROLE,
    "PERIMETER_DRY_RUN": "false",
    "POWERTOOLS_METRICS_NAMESPACE": "Perimeter",
}


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("PERIMETER_ACCOUNT_ID", "PERIMETER_POLICY_PARAMETER", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(k, raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        topic, queue_url = create_stack_resources(
            session,
            audit_table=AUDIT_TABLE,
            idempotency_table=IDEMPOTENCY_TABLE,
            queue_name="findings",
        )
        monkeypatch.setenv("PERIMETER_TOPIC_ARN", topic)
        runtime.reset()
        yield Account(session, session.client("ec2"), queue_url, load_handler())
        runtime.reset()


@dataclass
class Vpc:
    vpc_id: str
    subnet_id: str
    default_sg: str
    instances: list[str] = field(default_factory=list)
    enis: list[str] = field(default_factory=list)  # every dependant ENI (instances' primary ENIs too)
    world_rule_id: str | None = None


def default_sg_of(ec2: Any, vpc_id: str) -> str:
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return str(groups[0]["GroupId"])


def build_vpc(ec2: Any, *, instances: int = 1, enis: int = 1, world_port: int | None = 22) -> Vpc:
    """A VPC whose default SG looks like a real one (self-reference ingress, allow-all egress),
    optionally with a world-open rule, and with instances and standalone ENIs on it."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    dsg = default_sg_of(ec2, vpc_id)
    # moto gap: AWS creates this rule with every default SG.
    ec2.authorize_security_group_ingress(
        GroupId=dsg, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": dsg}]}]
    )
    vpc = Vpc(vpc_id, subnet_id, dsg)
    if world_port is not None:
        resp = ec2.authorize_security_group_ingress(
            GroupId=dsg,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": world_port,
                    "ToPort": world_port,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )
        vpc.world_rule_id = resp["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    if instances:
        run = ec2.run_instances(
            ImageId="ami-12345678", MinCount=instances, MaxCount=instances, SubnetId=subnet_id
        )
        for inst in run["Instances"]:
            vpc.instances.append(inst["InstanceId"])
            vpc.enis.extend(n["NetworkInterfaceId"] for n in inst["NetworkInterfaces"])
    for _ in range(enis):
        vpc.enis.append(
            ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
        )
    return vpc


def groups_of(ec2: Any, eni_ids: list[str]) -> dict[str, list[str]]:
    resp = ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"]
    return {n["NetworkInterfaceId"]: [g["GroupId"] for g in n["Groups"]] for n in resp}


def rules_of(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    return ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]  # type: ignore[no-any-return]


class FaultyEc2:
    """An EC2 client that raises on the Nth call of one operation, and records every
    ModifyNetworkInterfaceAttribute so a test can check no call ever left an ENI groupless."""

    def __init__(self, real: Any, operation: str, nth: int) -> None:
        self._real = real
        self._operation = operation
        self._nth = nth
        self.calls: dict[str, int] = {}
        self.group_lists: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name == "get_paginator":
            return self._paginator
        if not callable(attr) or name.startswith("get_") or name in ("can_paginate", "meta"):
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if name == "modify_network_interface_attribute":
                self.group_lists.append(list(kwargs.get("Groups", [])))
            if name == self._operation and self.calls[name] == self._nth:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "injected"}}, name)
            return attr(*args, **kwargs)

        return wrapped

    def _paginator(self, operation: str) -> Any:
        real = self._real.get_paginator(operation)
        outer = self

        class _Counting:
            def paginate(self, **kwargs: Any) -> Any:
                outer.calls[operation] = outer.calls.get(operation, 0) + 1
                return real.paginate(**kwargs)

        return _Counting()


def install_client(ec2_client: Any) -> runtime.Runtime:
    """A runtime whose EC2 client is ``ec2_client`` (the handler picks it up via get_runtime)."""
    rt = runtime.Runtime(runtime.Settings.from_env())
    rt._clients["ec2"] = ec2_client  # the runtime builds clients once per container; this is that client
    runtime.reset(rt)
    return rt


def env_flag(name: str, value: str) -> None:
    os.environ[name] = value


# --- CloudTrail events for calls made against moto ---------------------------------------


def event(
    name: str,
    request: dict[str, Any],
    response: dict[str, Any] | None,
    *,
    source: str = "ec2.amazonaws.com",
    actor_arn: str | None = None,
    error_code: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    from perimeter.core.events import wrap_in_envelope
    from perimeter_local.cloudtrail import record

    rec = record(
        name,
        source,
        request,
        response,
        account=ACCOUNT,
        region=REGION,
        actor_arn=actor_arn,
        error_code=error_code,
        event_id=event_id,
    )
    return wrap_in_envelope(rec)


def run_instances_event(
    instance_ids: list[str], eni_ids: list[str], group_ids: list[str], vpc_id: str, **kw: Any
) -> dict[str, Any]:
    groups = {"items": [{"groupId": g} for g in group_ids]}
    response = {
        "instancesSet": {
            "items": [
                {
                    "instanceId": i,
                    "vpcId": vpc_id,
                    "groupSet": groups,
                    "networkInterfaceSet": {"items": [{"networkInterfaceId": e, "groupSet": groups}]},
                }
                for i, e in zip(instance_ids, eni_ids, strict=True)
            ]
        }
    }
    return event("RunInstances", {"instancesSet": {"items": [{"imageId": "ami-12345678"}]}}, response, **kw)


def create_eni_event(eni_id: str, vpc_id: str, group_ids: list[str], **kw: Any) -> dict[str, Any]:
    response = {
        "networkInterface": {
            "networkInterfaceId": eni_id,
            "vpcId": vpc_id,
            "groupSet": {"items": [{"groupId": g} for g in group_ids]},
        }
    }
    return event("CreateNetworkInterface", {"subnetId": "subnet-x", "groupSet": {}}, response, **kw)


def modify_eni_event(eni_id: str, group_ids: list[str] | None, **kw: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"networkInterfaceId": eni_id}
    if group_ids is None:
        req["sourceDestCheck"] = {"value": False}
    else:
        req["groupSet"] = {"items": [{"groupId": g} for g in group_ids]}
    return event("ModifyNetworkInterfaceAttribute", req, {"_return": True}, **kw)


def modify_instance_event(instance_id: str, group_ids: list[str] | None, **kw: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"instanceId": instance_id}
    if group_ids is None:
        req["disableApiTermination"] = {"value": True}
    else:
        req["groupSet"] = {"items": [{"groupId": g} for g in group_ids]}
    return event("ModifyInstanceAttribute", req, {"_return": True}, **kw)


class ServiceOwned:
    """Stub for one moto gap only: moto cannot create a requester-managed ENI (one another AWS
    service owns, like an EFS mount target's). ENI reads report these ids as requester-managed;
    every other call goes to moto unchanged."""

    def __init__(self, real: Any, eni_ids: set[str], requester: str = "AIDAEXAMPLE") -> None:
        self._real = real
        self._ids = eni_ids
        self._requester = requester

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _mark(self, page: dict[str, Any]) -> dict[str, Any]:
        for eni in page.get("NetworkInterfaces", []):
            if eni["NetworkInterfaceId"] in self._ids:
                eni["RequesterManaged"] = True
                eni["RequesterId"] = self._requester
        return page

    def describe_network_interfaces(self, **kwargs: Any) -> dict[str, Any]:
        return self._mark(self._real.describe_network_interfaces(**kwargs))

    def get_paginator(self, name: str) -> Any:
        paginator = self._real.get_paginator(name)
        if name != "describe_network_interfaces":
            return paginator
        outer = self

        class _Paginator:
            def paginate(self, **kwargs: Any) -> Any:
                return (outer._mark(p) for p in paginator.paginate(**kwargs))

        return _Paginator()
