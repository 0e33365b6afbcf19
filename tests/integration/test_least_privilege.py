"""Least privilege: each function's role grants exactly the actions its code calls.

Three sides are held together: ``perimeter.core.permissions.FUNCTIONS`` (what the code declares),
the template's role for each function (what a deploy grants), and what the code really calls
when events run through it under moto (every botocore call recorded). Template == declared;
recorded is a subset of declared; and for SgGuard, scenarios exercise every declared action,
so nothing is granted that no code path uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws
from perimeter.core import permissions
from perimeter_local import cloudtrail
from perimeter_local.account import prepare
from perimeter_local.invoke import forget_containers, invoke
from perimeter_local.template import functions, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
#: Used by the Lambda service on the function's behalf, not by the code.
PLATFORM = {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"}


def _actions(node: Any) -> set[str]:
    """Every action named in a policy document, in both branches of any Fn::If."""
    out: set[str] = set()
    if isinstance(node, dict):
        if "Action" in node:
            acts = node["Action"]
            out |= set(acts if isinstance(acts, list) else [acts])
        for value in node.values():
            out |= _actions(value)
    elif isinstance(node, list):
        for value in node:
            out |= _actions(value)
    return out


def _split_org(node: Any) -> tuple[Any, list[Any]]:
    """(the node without its ``Fn::If: [IsOrganization, ...]`` branches, those branches)."""
    org: list[Any] = []

    def strip(n: Any) -> Any:
        if isinstance(n, dict):
            cond = n.get("Fn::If")
            if isinstance(cond, list) and cond and cond[0] == "IsOrganization":
                org.append(cond[1])
                return strip(cond[2])
            return {k: strip(v) for k, v in n.items()}
        if isinstance(n, list):
            return [strip(v) for v in n]
        return n

    return strip(node), org


def _role_policies(function_id: str) -> Any:
    role_id = TEMPLATE["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return TEMPLATE["Resources"][role_id]["Properties"].get("Policies", [])


def _granted(function_id: str) -> set[str]:
    """What the role grants in either mode, outside the organization-only statements."""
    base, _ = _split_org(_role_policies(function_id))
    return _actions(base) - PLATFORM


def _granted_in_organization_mode(function_id: str) -> set[str]:
    _, org = _split_org(_role_policies(function_id))
    return _actions(org)


@pytest.mark.parametrize(
    "function_id",
    [k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"],
)
def test_template_grants_exactly_what_the_code_declares(function_id: str) -> None:
    assert function_id in permissions.FUNCTIONS, (
        f"{function_id}: declare its actions in perimeter/core/permissions.py"
    )
    assert _granted(function_id) == set(permissions.FUNCTIONS[function_id])


@pytest.mark.parametrize("function_id", sorted(permissions.ORGANIZATION))
def test_organization_mode_grants_exactly_the_declared_extra(function_id: str) -> None:
    """Organization mode adds only what ``permissions.ORGANIZATION`` declares (assuming the member
    role, the OU tree; the sweep's fan-out), and only behind ``IsOrganization``."""
    declared = set(permissions.ORGANIZATION.get(function_id, ()))  # UndoFunction: none
    assert _granted_in_organization_mode(function_id) == declared
    assert not _granted(function_id) & declared


def test_no_wildcard_actions() -> None:
    for res in TEMPLATE["Resources"].values():
        if res["Type"] == "AWS::IAM::Role":
            assert not [a for a in _actions(res["Properties"].get("Policies", [])) if "*" in a]


class Recorder:
    """Records ``service:Operation`` of every AWS call made while on."""

    def __init__(self) -> None:
        self.calls: set[str] = set()
        self.on = False

    def install(self, monkeypatch: Any) -> None:
        original = BaseClient._make_api_call
        recorder = self

        def spy(client: BaseClient, operation: str, params: Any) -> Any:
            if recorder.on:
                model = client.meta.service_model
                prefix = model.signing_name or model.endpoint_prefix
                recorder.calls |= permissions.actions_of_call(prefix, operation, params)
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", spy)


@pytest.fixture
def account(monkeypatch: Any) -> Any:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    forget_containers()
    with mock_aws():
        yield boto3.session.Session()
    forget_containers()


def _run(
    session: Any, recorder: Recorder, event: dict[str, Any], function_id: str, **params: str
) -> dict[str, Any]:
    template, resolver = prepare(session, ROOT / "template.yaml", parameters=params)
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == function_id)
    recorder.on = True
    try:
        return invoke(spec, event, account="123456789012", region="us-east-1")
    finally:
        recorder.on = False


def test_sg_guard_calls_exactly_its_declared_actions(account: Any, monkeypatch: Any) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    ec2 = account.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(
        GroupName="m",
        Description="m",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )["GroupId"]
    world22 = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}

    # 1. a violating event from before rule ids (DescribeSecurityGroupRules, revoke, report, audit)
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[world22])
    legacy = cloudtrail.authorize_event(
        account="123456789012", region="us-east-1", group_id=gid, permissions=[world22], created_rules=None
    )
    assert _run(account, recorder, legacy, "SgGuardFunction")["result"]["status"] == "remediated"
    # 2. the duplicate (idempotency GetItem)
    assert _run(account, recorder, legacy, "SgGuardFunction")["ok"]

    # 3. the policy from SSM with PER-SG-4 enforced: egress revoke
    policy = (
        (ROOT / "policy" / "default.yaml")
        .read_text()
        .replace("PER-SG-4: {mode: detect}", "PER-SG-4: {mode: enforce}")
    )
    account.client("ssm").put_parameter(Name="/perimeter/policy", Value=policy, Type="String")
    created = cloudtrail.create_group_event(
        account="123456789012",
        region="us-east-1",
        group_id=gid,
        name="m",
        vpc_id=vpc,
        tags={"perimeter:tier": "model"},
    )
    res = _run(account, recorder, created, "SgGuardFunction", PolicyParameterName="/perimeter/policy")
    assert res["result"]["status"] == "remediated", res

    # 4. a failure after the idempotency claim (Security Hub refuses, SNS is down): nothing of
    # the report went out, so the claim is deleted (one that sent a part is kept RELEASED, a PutItem)
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[world22])
    failing = cloudtrail.authorize_event(
        account="123456789012", region="us-east-1", group_id=gid, permissions=[world22], created_rules=None
    )
    import perimeter.adapters.securityhub as hub
    import perimeter.adapters.sns as sns

    def refuse(self: Any, findings: Any) -> int:
        raise hub.FindingsRejected("injected")

    def down(self: Any, note: Any) -> str:
        raise RuntimeError("injected: SNS down")

    with monkeypatch.context() as m:
        m.setattr(hub.SecurityHubAdapter, "import_findings", refuse)
        m.setattr(sns.SnsAdapter, "publish", down)
        assert not _run(account, recorder, failing, "SgGuardFunction")["ok"]
    # 5. Lambda's retry: the rule is already gone, the audit record (GetItem) says we removed it
    retry = _run(account, recorder, failing, "SgGuardFunction")["result"]
    assert retry["status"] == "remediated" and retry["groups"][0]["audit_id"], retry
    assert {v["action"] for v in retry["groups"][0]["violations"]} == {"revoked"}

    # 6. a rule naming a customer prefix list whose entries make the world (issue 8: the union)
    pl = ec2.create_managed_prefix_list(
        PrefixListName="partners", MaxEntries=5, AddressFamily="IPv4", Entries=[{"Cidr": "0.0.0.0/0"}]
    )["PrefixList"]["PrefixListId"]
    via_pl = {"IpProtocol": "tcp", "FromPort": 9200, "ToPort": 9200, "PrefixListIds": [{"PrefixListId": pl}]}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[via_pl])
    pl_event = cloudtrail.authorize_event(
        account="123456789012", region="us-east-1", group_id=gid, permissions=[via_pl], created_rules=None
    )
    assert _run(account, recorder, pl_event, "SgGuardFunction")["result"]["status"] == "remediated"

    # 7. a record naming the group by groupName only (default VPC): DescribeVpcs resolves it
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    named = ec2.create_security_group(GroupName="web", Description="w", VpcId=default_vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=named, IpPermissions=[world22])
    by_name = cloudtrail.authorize_event(
        account="123456789012", region="us-east-1", group_id=named, permissions=[world22], created_rules=None
    )
    by_name["detail"]["requestParameters"] = {
        "groupName": "web",
        "ipPermissions": by_name["detail"]["requestParameters"]["ipPermissions"],
    }
    assert _run(account, recorder, by_name, "SgGuardFunction")["result"]["status"] == "remediated"

    # 8. an undo exemption of the rule opened again: the claim's ConditionCheck fails, so the
    # exemptions are read (Query) and the rule is left
    import datetime as dt

    from perimeter.core.exemptions import undo_items
    from perimeter.core.rules import Rule

    ddb = account.client("dynamodb")
    [table] = [t for t in ddb.list_tables()["TableNames"] if "xemption" in t]
    for item in undo_items(
        resource_id=gid,
        controls=("PER-SG-1", "PER-SG-2"),
        rules=[Rule(gid, False, "tcp", 22, 22, cidr="0.0.0.0/0")],
        until=dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3),
        actor="arn:aws:iam::123456789012:user/rita",
        reason="partner",
        audit_id="undone",
        finding_id=None,
        now="2026-01-01T00:00:00Z",
    ):
        ddb.put_item(TableName=table, Item=item)
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[world22])
    exempted = cloudtrail.authorize_event(
        account="123456789012", region="us-east-1", group_id=gid, permissions=[world22], created_rules=None
    )
    assert _run(account, recorder, exempted, "SgGuardFunction")["result"]["status"] == "reported"

    declared = set(permissions.FUNCTIONS["SgGuardFunction"])
    assert recorder.calls <= declared, f"called but not declared: {recorder.calls - declared}"
    assert declared <= recorder.calls, f"declared but never called: {declared - recorder.calls}"


def test_every_sample_stays_within_its_functions_permissions(account: Any, monkeypatch: Any) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    from perimeter_local.invoke import route

    template, resolver = prepare(account, ROOT / "template.yaml")
    specs = functions(template, resolver, ROOT)
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        for spec, _rule in route(specs, event):
            recorder.calls.clear()
            recorder.on = True
            try:
                invoke(spec, event, account="123456789012", region="us-east-1")
            finally:
                recorder.on = False
            extra = recorder.calls - set(permissions.FUNCTIONS[spec.logical_id])
            assert not extra, f"{path.name} -> {spec.logical_id} called undeclared {extra}"


def test_sweep_calls_only_its_declared_actions(account: Any, monkeypatch: Any) -> None:
    """A sweep that acts on everything it can: a world-open rule, a stale rule (REV-2
    enforce), an unused group past its grace (REV-1 enforce), a default SG with a rule and an
    ENI on it (the migration), a VPC without a flow log and with an internet gateway, a SageMaker
    model and a notebook."""
    from perimeter_local.cli import scheduled_event
    from perimeter_local.review_seed import remember_unused

    recorder = Recorder()
    recorder.install(monkeypatch)
    ec2 = account.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.51.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.51.1.0/24")["Subnet"]["SubnetId"]
    # an internet gateway: PER-NET-1 reads the region's routes, ACLs, subnets and ENIs
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    gone = ec2.create_security_group(GroupName="gone", Description="gone", VpcId=vpc)["GroupId"]
    unused = ec2.create_security_group(GroupName="unused", Description="unused", VpcId=vpc)["GroupId"]
    world22 = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    partners = ec2.create_managed_prefix_list(
        PrefixListName="partners", MaxEntries=2, AddressFamily="IPv4", Entries=[{"Cidr": "203.0.113.0/24"}]
    )["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(
        GroupId=app,
        IpPermissions=[
            world22,
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": gone}]},
            # the union rule reads the customer list's entries
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "PrefixListIds": [{"PrefixListId": partners}],
            },
        ],
    )
    ec2.delete_security_group(GroupId=gone)
    ec2.create_network_interface(SubnetId=subnet, Groups=[app])
    ec2.create_network_interface(SubnetId=subnet)  # lands on the default SG
    default = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=default, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": default}]}]
    )
    role = account.client("iam").create_role(RoleName="sm", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    sm = account.client("sagemaker")
    sm.create_model(
        ModelName="m",
        ExecutionRoleArn=role,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        VpcConfig={"Subnets": [subnet], "SecurityGroupIds": [app]},
    )
    sm.create_notebook_instance(NotebookInstanceName="nb", InstanceType="ml.t3.medium", RoleArn=role)
    policy = (ROOT / "policy" / "default.yaml").read_text()
    for control in ("PER-REV-1", "PER-REV-2"):
        policy = policy.replace(f"{control}: {{mode: detect}}", f"{control}: {{mode: enforce}}")
    account.client("ssm").put_parameter(Name="/perimeter/policy", Value=policy, Type="String")
    _, resolver = prepare(
        account, ROOT / "template.yaml", parameters={"PolicyParameterName": "/perimeter/policy"}
    )
    remember_unused(account, resolver, unused, 60)
    event = scheduled_event("123456789012", "us-east-1", "perimeter-sweep")
    res = _run(account, recorder, event, "SweepFunction", PolicyParameterName="/perimeter/policy")
    assert res["ok"], res.get("traceback")
    out = res["result"]
    assert out["deleted"] == [unused] and out["revoked"]
    assert any(v["moved"] for v in out["default_groups"])

    declared = set(permissions.FUNCTIONS["SweepFunction"])
    assert recorder.calls <= declared, f"called but not declared: {recorder.calls - declared}"
    # Declared, not called here, each for a stated reason:
    not_called = {
        "ec2:DescribeStaleSecurityGroups",  # only for peered VPCs; moto lacks it (Stubber test)
        "ec2:CreateTags",  # authorizes the tags on CreateSecurityGroup, no call of its own
        # the interim group's egress is the default SG's allow-all, which a new group has already
        "ec2:AuthorizeSecurityGroupEgress",
        "iam:PassRole",  # authorizes CreateFlowLogs' delivery role, no call of its own
        "logs:CreateLogDelivery",  # authorize flow logs to S3 (the policy's other destination)
        "logs:DeleteLogDelivery",
        # a Marketplace endpoint's configuration: moto holds none (Stubber test in test_sweep.py)
        "bedrock:GetMarketplaceModelEndpoint",
        # the text of AWS managed policies attached to a principal: moto loads none unless
        # MOTO_IAM_LOAD_MANAGED_POLICIES is set (IamGuard's tests read them)
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        # a ledger item an event changed between the sweep's Scan and its write
        # (test_ledger_batch.py makes that race)
        "dynamodb:UpdateItem",
    }
    assert declared - recorder.calls == not_called
