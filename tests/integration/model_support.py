"""Shared set-up for the model-posture tests (issue 4): a moto account with Perimeter's tables,
topic, flow-log group and delivery role; the three real handlers; a model deployment builder;
and Stubber helpers for what moto lacks (FACTS.md: Bedrock guardrails, Marketplace endpoints
and model import; SageMaker ``EnableNetworkIsolation`` read-back).

A stubbed client replaces one service's client in the container's ``Runtime`` only; every
other service stays on moto, so AWS state (flow logs, findings, audit records) is asserted
for real.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import perimeter.core.runtime as runtime
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from perimeter.core.events import wrap_in_envelope
from perimeter_local.cloudtrail import record

from tests.corpus import load
from tests.harness import audit_records, create_stack_resources, drain_messages

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
AUDIT_TABLE = "perimeter-audit"
IDEMPOTENCY_TABLE = "perimeter-idempotency"
FLOW_LOG_GROUP = "/perimeter/perimeter/vpc-flow-logs"
FLOW_LOG_INDEX_TABLE = "perimeter-flow-log-index"


def corpus(name: str) -> dict[str, Any]:
    return load(name)


def sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())  # type: ignore[no-any-return]


def _load(function_dir: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"{function_dir}_app", ROOT / "functions" / function_dir / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


class FakeContext:
    function_name = "perimeter-model-posture"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:perimeter-model-posture"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Deployment:
    vpc_id: str
    private_subnet: str
    public_subnet: str
    model_sg: str
    db_sg: str
    app_sg: str
    default_sg: str


@dataclass
class Acct:
    session: Any
    region: str
    queue_url: str
    role_arn: str

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def run(self, function_dir: str, event: dict[str, Any]) -> dict[str, Any]:
        return _load(function_dir)(event, FakeContext())  # type: ignore[no-any-return]

    def model(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.run("model_posture", event)

    def iam(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.run("iam_guard", event)

    def flowlog(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.run("flowlog_guard", event)

    def stub(self, service: str) -> Stubber:
        """Replace ``service``'s client in the container's Runtime by a stubbed one (moto gap)."""
        rt = runtime.get_runtime()
        client = boto3.session.Session(region_name=self.region).client(service)
        rt._clients[service] = client
        stubber = Stubber(client)
        stubber.activate()
        return stubber

    def findings(self) -> list[dict[str, Any]]:
        return self.client("securityhub").get_findings(MaxResults=100)["Findings"]  # type: ignore[no-any-return]

    def by_control(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for f in self.findings():
            out.setdefault(f["GeneratorId"], []).append(f)
        return out

    def messages(self) -> list[dict[str, Any]]:
        return drain_messages(self.client("sqs"), self.queue_url)

    def audit_records(self) -> list[dict[str, Any]]:
        return audit_records(self.client("dynamodb"), AUDIT_TABLE)

    def flow_logs(self, vpc_id: str) -> list[dict[str, Any]]:
        resp = self.client("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])
        return resp["FlowLogs"]  # type: ignore[no-any-return]

    def event(
        self,
        name: str,
        source: str,
        request: dict[str, Any],
        response: dict[str, Any] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        return wrap_in_envelope(
            record(name, source, request, response, account=ACCOUNT, region=self.region, **kw)
        )

    # --- a model deployment --------------------------------------------------------------
    def deployment(self, *, flow_log: bool = False, runtime_endpoint: bool = False) -> Deployment:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
        public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.2.0/24")["Subnet"]["SubnetId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=public)

        def group(name: str, tier: str) -> str:
            return ec2.create_security_group(  # type: ignore[no-any-return]
                GroupName=name,
                Description=name,
                VpcId=vpc,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": tier}]}
                ],
            )["GroupId"]

        app, model, db = group("app", "app"), group("model", "model"), group("db", "database")
        # The model tier talks only inside the VPC: no 0.0.0.0/0 egress (PER-SG-4).
        ec2.revoke_security_group_egress(
            GroupId=model, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
        ec2.authorize_security_group_egress(
            GroupId=model,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "10.20.0.0/16"}],
                }
            ],
        )
        ec2.authorize_security_group_ingress(
            GroupId=model,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8080,
                    "ToPort": 8080,
                    "UserIdGroupPairs": [{"GroupId": app}],
                }
            ],
        )
        ec2.authorize_security_group_ingress(
            GroupId=db,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "UserIdGroupPairs": [{"GroupId": app}],
                }
            ],
        )
        default = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"][0]["GroupId"]
        if flow_log:
            self.client("logs").create_log_group(logGroupName="/existing/flow-logs")
            ec2.create_flow_logs(
                ResourceIds=[vpc],
                ResourceType="VPC",
                TrafficType="ALL",
                LogDestinationType="cloud-watch-logs",
                LogGroupName="/existing/flow-logs",
                DeliverLogsPermissionArn=self.role_arn,
            )
        if runtime_endpoint:
            ec2.create_vpc_endpoint(
                VpcId=vpc,
                ServiceName=f"com.amazonaws.{self.region}.sagemaker.runtime",
                VpcEndpointType="Interface",
                SubnetIds=[private],
                SecurityGroupIds=[model],
            )
        return Deployment(vpc, private, public, model, db, app, default)


def model_role(iam: Any, name: str = "sagemaker-deepseek-execution") -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]  # type: ignore[no-any-return]


ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "PERIMETER_AUDIT_TABLE": AUDIT_TABLE,
    "PERIMETER_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
    "PERIMETER_SELF_ROLES": ",".join(
        f"perimeter-{n}-us-east-1" for n in ("model-posture", "iam-guard", "flow-log-guard")
    ),
    "POWERTOOLS_METRICS_NAMESPACE": "Perimeter",
    "POWERTOOLS_SERVICE_NAME": "perimeter",
    "PERIMETER_FLOW_LOG_GROUP": FLOW_LOG_GROUP,
    "PERIMETER_FLOW_LOG_INDEX_TABLE": FLOW_LOG_INDEX_TABLE,
}


def make_account(monkeypatch: pytest.MonkeyPatch, region: str = "us-east-1") -> Iterator[Acct]:
    for k, v in {**ENV, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL", "PERIMETER_ACCOUNT_ID", "PERIMETER_DRY_RUN", "PERIMETER_POLICY_PARAMETER"):
        monkeypatch.delenv(k, raising=False)
    runtime.reset()
    with mock_aws():
        session = boto3.session.Session(region_name=region)
        topic, queue = create_stack_resources(
            session, audit_table=AUDIT_TABLE, idempotency_table=IDEMPOTENCY_TABLE
        )
        monkeypatch.setenv("PERIMETER_TOPIC_ARN", topic)
        session.client("dynamodb").create_table(
            TableName=FLOW_LOG_INDEX_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role_arn = session.client("iam").create_role(
            RoleName=f"perimeter-flow-log-delivery-{region}", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        monkeypatch.setenv("PERIMETER_FLOW_LOG_ROLE_ARN", role_arn)
        runtime.reset()
        yield Acct(session, region, queue, role_arn)
    runtime.reset()


def policy_with(monkeypatch: pytest.MonkeyPatch, session: Any, old: str, new: str) -> None:
    """Serve the default policy with one edit from SSM (how a deployment overrides it)."""
    text = (ROOT / "layers/perimeter/perimeter/policy/default.yaml").read_text()
    assert old in text
    session.client("ssm").put_parameter(
        Name="/perimeter/policy", Value=text.replace(old, new), Type="String", Overwrite=True
    )
    monkeypatch.setenv("PERIMETER_POLICY_PARAMETER", "/perimeter/policy")
    runtime.reset()
