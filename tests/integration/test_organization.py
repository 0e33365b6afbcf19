"""Organization mode under moto, with several accounts (issue 12 A).

moto keys its state by the account of the access key that signs a request, and STS AssumeRole
into another account's role returns keys of that account: so a member account's resources, its
Security Hub and the security account's tables are separate backends here, as they are in AWS.

The security account is moto's default account (the organization's management account here);
members B and C are accounts created in the organization. Perimeter's functions run through the
local runner with template.yaml's environment under ``Mode=organization``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import pytest
from perimeter.adapters.audit import AuditAdapter
from perimeter.core import accounts
from perimeter_local import cloudtrail
from perimeter_local.account import prepare
from perimeter_local.invoke import invoke
from perimeter_local.template import functions

from tests.harness import moto_account

ROOT = Path(__file__).resolve().parents[2]
SECURITY = "123456789012"
REGION = "us-east-1"
EXTERNAL_ID = "perimeter-test-external-id"
ORG_PARAMS = {"Mode": "organization", "OrganizationId": "", "ExternalId": EXTERNAL_ID}
WORLD_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


@pytest.fixture
def org(monkeypatch: Any) -> Any:
    accounts.forget()
    with moto_account(monkeypatch, REGION):
        yield Org()
    accounts.forget()


class Org:
    """The security account's session, the organization and its member accounts."""

    def __init__(self) -> None:
        self.security = boto3.session.Session()
        orgs = self.security.client("organizations")
        self.org_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        self.root = orgs.list_roots()["Roots"][0]["Id"]
        self.ou = orgs.create_organizational_unit(ParentId=self.root, Name="ml")["OrganizationalUnit"]["Id"]
        self.members = [self._account(orgs, name) for name in ("b", "c")]
        orgs.move_account(AccountId=self.members[0], SourceParentId=self.root, DestinationParentId=self.ou)
        self.params = {**ORG_PARAMS, "OrganizationId": self.org_id}

    @staticmethod
    def _account(orgs: Any, name: str) -> str:
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        return str(status["AccountId"])

    def session_of(self, account: str) -> Any:
        """A session in ``account`` (the organization's access role, as an operator would use)."""
        creds = self.security.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="setup"
        )["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=REGION,
        )

    def run(self, function_id: str, event: dict[str, Any], **params: str) -> dict[str, Any]:
        template, resolver = prepare(self.security, ROOT / "template.yaml", parameters=params)
        spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == function_id)
        return invoke(spec, event, account=SECURITY, region=REGION)


def _world_ssh_group(session: Any) -> tuple[str, str]:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(
        GroupName="model",
        Description="model tier",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    return vpc, gid


def _ingress(session: Any, gid: str) -> list[dict[str, Any]]:
    return session.client("ec2").describe_security_groups(GroupIds=[gid])["SecurityGroups"][0][
        "IpPermissions"
    ]


def _findings(session: Any) -> list[dict[str, Any]]:
    return session.client("securityhub").get_findings()["Findings"]


def _member_sessions() -> accounts.MemberSessions:
    """The warm container's member sessions (the local runner keeps a runtime per function)."""
    from perimeter_local import invoke as runner

    (found,) = [
        rt.__dict__["_member_sessions"]
        for rt in runner._RUNTIMES.values()
        if "_member_sessions" in rt.__dict__
    ]
    return found


def _audit_table(org: Org) -> AuditAdapter:
    name = next(t for t in org.security.client("dynamodb").list_tables()["TableNames"] if "AuditTable" in t)
    return AuditAdapter(org.security.client("dynamodb"), name)


def test_an_event_from_member_b_is_remediated_in_b_and_reported_for_b(org: Org) -> None:
    b = org.members[0]
    sb = org.session_of(b)
    sb.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
    _, gid = _world_ssh_group(sb)
    event = cloudtrail.authorize_event(
        account=b, region=REGION, group_id=gid, permissions=[WORLD_SSH], created_rules=None
    )

    out = org.run("SgGuardFunction", event, **org.params)

    assert out["ok"], out
    assert out["result"]["status"] == "remediated", out["result"]
    # Read back in B: the world-open SSH rule is gone from B's group.
    assert _ingress(sb, gid) == []
    # The group does not exist in the security account: nothing was done there.
    with pytest.raises(Exception, match="InvalidGroup"):
        org.security.client("ec2").describe_security_groups(GroupIds=[gid])
    # The finding is B's: imported into B's hub (the default product accepts only the account a
    # finding names), AwsAccountId and ProductArn are B's.
    found = [f for f in _findings(sb) if f["GeneratorId"] == "PER-SG-1"]
    assert len(found) == 1, _findings(sb)
    assert found[0]["AwsAccountId"] == b
    assert found[0]["ProductArn"] == f"arn:aws:securityhub:{REGION}:{b}:product/{b}/default"
    assert found[0]["Id"].startswith(f"perimeter/PER-SG-1/{b}/{REGION}/")
    assert found[0]["Compliance"]["Status"] == "PASSED"  # remediated: the group's state is fine now
    assert not [f for f in _findings(org.security) if f.get("AwsAccountId") == b]
    # The audit record is in the security account's table and names B.
    records = _audit_table(org).scan()
    assert [r["account"] for r in records] == [b]
    assert records[0]["group_id"] == gid
    # One AssumeRole for the container, named after the event.
    sessions = _member_sessions()
    assert sessions.assumed == 1
    role_arn = f"arn:aws:iam::{b}:role/perimeter-remediation-{REGION}"
    assert sessions._creds[role_arn].session_name == accounts.role_session_name(event["detail"]["eventID"])


def test_credentials_are_reused_per_account_and_kept_apart_per_member(org: Org) -> None:
    b, c = org.members
    groups = {}
    for acct in (b, c):
        s = org.session_of(acct)
        s.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
        groups[acct] = (s, _world_ssh_group(s)[1])
    for acct in (b, c, b):
        s, gid = groups[acct]
        s.client("ec2").authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH]) if _ingress(
            s, gid
        ) == [] else None
        event = cloudtrail.authorize_event(
            account=acct, region=REGION, group_id=gid, permissions=[WORLD_SSH], created_rules=None
        )
        assert org.run("SgGuardFunction", event, **org.params)["result"]["status"] == "remediated"
        assert _ingress(s, gid) == []
    sessions = _member_sessions()
    assert sessions.assumed == 2  # one per member, the third event reused B's
    for acct in (b, c):
        s, _ = groups[acct]
        assert {f["AwsAccountId"] for f in _findings(s)} == {acct}


def test_without_organization_mode_a_member_event_is_ignored(org: Org) -> None:
    """The same event to a single-account stack: another account's, a no-op; B keeps its rule."""
    b = org.members[0]
    sb = org.session_of(b)
    _, gid = _world_ssh_group(sb)
    event = cloudtrail.authorize_event(
        account=b, region=REGION, group_id=gid, permissions=[WORLD_SSH], created_rules=None
    )
    out = org.run("SgGuardFunction", event)
    assert out["result"]["status"] == "ignored", out
    assert f"account {b} is not this deployment's" in out["result"]["reason"]
    assert _ingress(sb, gid) != []


def test_the_member_roles_own_revoke_coming_back_is_ignored(org: Org) -> None:
    """Loop guard across accounts: B's CloudTrail records Perimeter's revoke as made by the
    member role; that event must be a no-op."""
    b = org.members[0]
    sb = org.session_of(b)
    _, gid = _world_ssh_group(sb)
    event = cloudtrail.authorize_event(
        account=b,
        region=REGION,
        group_id=gid,
        permissions=[WORLD_SSH],
        created_rules=None,
        actor_arn=f"arn:aws:sts::{b}:assumed-role/perimeter-remediation-{REGION}/perimeter-x",
    )
    out = org.run("SgGuardFunction", event, **org.params)
    assert out["result"]["status"] == "ignored", out
    assert "Perimeter's own role" in out["result"]["reason"]
    assert _ingress(sb, gid) != []


def test_the_ou_override_applies_to_its_accounts_only(org: Org) -> None:
    """The policy from SSM puts PER-SG-1/2 in detect for the OU holding B: B's world SSH is
    reported, not revoked; C (outside the OU) is remediated as the base policy says."""
    b, c = org.members
    base = (ROOT / "policy" / "default.yaml").read_text()
    policy = base + (
        "\noverrides:\n"
        f"  ous:\n    {org.ou}:\n      controls:\n"
        "        PER-SG-1: {mode: detect}\n"
        "        PER-SG-2: {mode: detect}\n"
        "        PER-SG-3: {mode: detect}\n"
    )
    org.security.client("ssm").put_parameter(Name="/perimeter/policy", Value=policy, Type="String")
    outcomes = {}
    sessions = {}
    for acct in (b, c):
        s = org.session_of(acct)
        s.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
        _, gid = _world_ssh_group(s)
        sessions[acct] = (s, gid)
        event = cloudtrail.authorize_event(
            account=acct, region=REGION, group_id=gid, permissions=[WORLD_SSH], created_rules=None
        )
        out = org.run("SgGuardFunction", event, PolicyParameterName="/perimeter/policy", **org.params)
        assert out["ok"], out
        outcomes[acct] = out["result"]["status"]
    assert outcomes == {b: "reported", c: "remediated"}, outcomes
    assert _ingress(*sessions[b]) != []  # B: detect only
    assert _ingress(*sessions[c]) == []  # C: the base policy enforces
    assert accounts._OU_CACHE[b] == (org.ou,)


def test_restore_works_across_accounts(org: Org) -> None:
    """``perimeter restore`` of B's audit record, from the security account: it assumes B's
    member role and puts the rule back in B."""
    from perimeter_local.cli import restore_session

    b = org.members[0]
    sb = org.session_of(b)
    sb.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
    _, gid = _world_ssh_group(sb)
    event = cloudtrail.authorize_event(
        account=b, region=REGION, group_id=gid, permissions=[WORLD_SSH], created_rules=None
    )
    assert org.run("SgGuardFunction", event, **org.params)["result"]["status"] == "remediated"
    record = _audit_table(org).scan()[0]
    from perimeter.restore import restore

    session = restore_session(
        org.security, record, member_role="perimeter-remediation", external_id=EXTERNAL_ID
    )
    assert session.client("sts").get_caller_identity()["Account"] == b
    restore(session, record)
    perms = _ingress(sb, gid)
    assert [(p["FromPort"], p["IpRanges"][0]["CidrIp"]) for p in perms] == [(22, "0.0.0.0/0")]
    # the security account's own record stays where it is: restoring in the security account
    # uses the caller's own session
    own = dict(record, account=SECURITY)
    assert restore_session(org.security, own, member_role="perimeter-remediation") is org.security


def test_credentials_are_refreshed_before_they_expire() -> None:
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    calls: list[dict[str, Any]] = []

    def assume(**kw: Any) -> dict[str, Any]:
        calls.append(kw)
        return {
            "Credentials": {
                "AccessKeyId": f"AK{len(calls)}",
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": now[0] + dt.timedelta(hours=1),
            }
        }

    built: list[tuple[str, str, str]] = []
    sessions = accounts.MemberSessions(
        assume,
        lambda service, region, keys: built.append((service, region, keys["aws_access_key_id"])) or object(),
        external_id="x",
        clock=lambda: now[0],
    )
    arn = "arn:aws:iam::222222222222:role/perimeter-remediation-us-east-1"
    first = sessions.client(arn, "us-east-1", "ec2", "ev-1")
    now[0] += dt.timedelta(minutes=50)
    assert sessions.client(arn, "us-east-1", "ec2", "ev-2") is first  # still 10 minutes left
    now[0] += dt.timedelta(minutes=6)  # 4 minutes left: inside the refresh margin
    second = sessions.client(arn, "us-east-1", "ec2", "ev-3")
    assert second is not first
    assert [c["RoleSessionName"] for c in calls] == ["perimeter-ev-1", "perimeter-ev-3"]
    assert all(c["ExternalId"] == "x" for c in calls)
    assert [b[2] for b in built] == ["AK1", "AK2"]


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [
        ("5d1f0a53-7e0c-4c2b-9b6e-0f1e2d3c4b5a", "perimeter-5d1f0a53-7e0c-4c2b-9b6e-0f1e2d3c4b5a"),
        ("a b/c:d", "perimeter-a-b-c-d"),
        ("x" * 100, "perimeter-" + "x" * 54),
        (None, "perimeter-sweep"),
    ],
)
def test_role_session_name_names_the_event_within_sts_limits(event_id: str | None, expected: str) -> None:
    name = accounts.role_session_name(event_id)
    assert name == expected
    import re

    assert 2 <= len(name) <= 64 and re.fullmatch(r"[\w+=,.@-]+", name)


def test_single_account_mode_returns_the_home_runtime_untouched() -> None:
    home = object()
    assert accounts.runtime_for({"account": "222222222222", "region": "eu-west-1"}, home, env={}) is home  # type: ignore[arg-type]


def test_the_security_accounts_own_events_use_its_own_credentials() -> None:
    """Organization mode: the function's own account and region is the home runtime itself; its
    own account in another region is a runtime of that region with the same credentials, built
    once per container; a member is a MemberRuntime through the member role."""
    from perimeter.core.runtime import Runtime, Settings

    env = {"PERIMETER_MEMBER_ROLE_NAME": "perimeter-remediation", "PERIMETER_EXTERNAL_ID": "x"}
    home = Runtime(Settings.from_env({"AWS_REGION": REGION, "PERIMETER_ACCOUNT_ID": SECURITY}))
    home.__dict__["policy"] = object()

    def ev(account: str, region: str) -> dict[str, Any]:
        return {"account": account, "region": region, "detail": {"eventID": "e1"}}

    assert accounts.runtime_for(ev(SECURITY, REGION), home, env) is home
    other = accounts.runtime_for(ev(SECURITY, "eu-west-1"), home, env)
    assert type(other) is Runtime and other.settings.region == "eu-west-1"
    assert other.settings.account_id == SECURITY and other.policy is home.policy
    assert accounts.runtime_for(ev(SECURITY, "eu-west-1"), home, env) is other
    forged = {"account": "222222222222", "region": REGION, "detail": {"recipientAccountId": "333333333333"}}
    assert accounts.runtime_for(forged, home, env) is home  # envelope and record disagree
    home.__dict__["_member_sessions"] = object()  # no STS call is made building the runtime
    member = accounts.runtime_for(ev("222222222222", "eu-west-1"), home, env)
    assert isinstance(member, accounts.MemberRuntime)
    assert member.role_arn == "arn:aws:iam::222222222222:role/perimeter-remediation-eu-west-1"
    assert member.settings.self_roles >= {"perimeter-remediation-eu-west-1"}
    assert member.flow_log_role_arn == (
        "arn:aws:iam::222222222222:role/perimeter-remediation-flow-logs-eu-west-1"
    )


def test_a_flow_log_is_created_in_the_member_with_the_member_stacks_delivery_role(org: Org) -> None:
    """FlowLogGuard on B's CreateVpc (policy: every VPC needs a flow log): the flow log is B's,
    delivered by the member stack's role in B, into a log group in B."""
    b = org.members[0]
    sb = org.session_of(b)
    sb.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
    vpc = sb.client("ec2").create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    policy = (ROOT / "policy" / "default.yaml").read_text().replace("scope: model-vpcs", "scope: all-vpcs")
    org.security.client("ssm").put_parameter(Name="/perimeter/policy", Value=policy, Type="String")
    rec = cloudtrail.record(
        "CreateVpc",
        "ec2.amazonaws.com",
        {"cidrBlock": "10.61.0.0/16"},
        {"vpc": {"vpcId": vpc, "ownerId": b, "cidrBlock": "10.61.0.0/16"}},
        account=b,
        region=REGION,
    )
    from perimeter.core.events import wrap_in_envelope

    out = org.run(
        "FlowLogGuardFunction", wrap_in_envelope(rec), PolicyParameterName="/perimeter/policy", **org.params
    )

    assert out["ok"], out
    logs = sb.client("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    assert len(logs) == 1, logs
    assert logs[0]["DeliverLogsPermissionArn"] == (
        f"arn:aws:iam::{b}:role/perimeter-remediation-flow-logs-{REGION}"
    )
    group = logs[0]["LogGroupName"]
    assert sb.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert not org.security.client("ec2").describe_flow_logs()["FlowLogs"]
    assert {r["account"] for r in _audit_table(org).scan()} == {b}


def test_account_mode_imports_none_of_organization_mode() -> None:
    """The handlers' cold start in account mode: perimeter.core.accounts and the sweep's fan-out are
    not imported, by any handler module nor by its first call to ``runtime_for``."""
    import subprocess
    import sys

    code = """
import importlib.util, os, sys
os.environ.pop("PERIMETER_MEMBER_ROLE_NAME", None)
for name in ("sg_guard", "default_sg", "model_posture", "iam_guard", "flowlog_guard", "sweep"):
    spec = importlib.util.spec_from_file_location("app_" + name, os.path.join("functions", name, "app.py"))
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
from perimeter.core.org import runtime_for
home = object()
assert runtime_for({"account": "222222222222", "region": "eu-west-1"}, home) is home
print(sorted(m for m in sys.modules if m in ("perimeter.core.accounts", "perimeter.review.fanout")))
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "AWS_LAMBDA_INITIALIZATION_TYPE"}
    env["AWS_REGION"] = REGION
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout


def test_iam_guard_judges_the_members_role_in_the_member(org: Org) -> None:
    """IamGuard (IAM is global; its events come from us-east-1) on B's PutRolePolicy: the role
    is read from B's IAM through the member role; the PER-IAM-1 finding is B's."""
    import json

    b = org.members[0]
    sb = org.session_of(b)
    sb.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
    sample = json.loads((ROOT / "events" / "PutRolePolicy--invoke-on-star.json").read_text())
    req = sample["detail"]["requestParameters"]
    iam = sb.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=req["roleName"], AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=req["roleName"], PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
    )
    sample["account"] = b
    sample["detail"]["recipientAccountId"] = b
    sample["detail"]["userIdentity"]["accountId"] = b

    out = org.run("IamGuardFunction", sample, **org.params)

    assert out["ok"], out
    found = [f for f in _findings(sb) if f["GeneratorId"] == "PER-IAM-1"]
    assert len(found) == 1 and found[0]["AwsAccountId"] == b, _findings(sb)
    assert req["roleName"] in found[0]["Resources"][0]["Id"]
    assert found[0]["Compliance"]["Status"] == "FAILED"
    assert not [f for f in _findings(org.security) if f["GeneratorId"] == "PER-IAM-1"]
