"""The sweep through its real handler (SweepFunction, as the template configures it) on moto.

Each scenario makes the account's state by hand, as a person or a missed event would, runs
the sweep and reads the outcome back through the API: the rules left, the findings'
Compliance.Status and RecordState (get_findings), the audit records, the review state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from perimeter.restore import restore
from perimeter_local import cloudtrail
from perimeter_local.account import prepare
from perimeter_local.cli import scheduled_event
from perimeter_local.invoke import invoke
from perimeter_local.review_seed import remember_unused
from perimeter_local.template import functions

from tests.harness import moto_account

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"
WORLD_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
OFFICE_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.7/32"}]}


@pytest.fixture
def session(monkeypatch: Any) -> Any:
    with moto_account(monkeypatch, REGION):
        yield boto3.session.Session()


def run(
    session: Any, function: str = "SweepFunction", event: dict[str, Any] | None = None, **params: str
) -> Any:
    template, resolver = prepare(session, ROOT / "template.yaml", parameters=params)
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == function)
    res = invoke(
        spec, event or scheduled_event(ACCOUNT, REGION, "perimeter-sweep"), account=ACCOUNT, region=REGION
    )
    assert res["ok"], res.get("traceback")
    return res["result"], resolver


def policy_with(session: Any, **modes: str) -> str:
    text = (ROOT / "policy" / "default.yaml").read_text()
    for control, mode in modes.items():
        cid = control.replace("_", "-")
        start = text.index(f"  {cid}: {{mode: ")
        end = text.index("}", start)
        text = text[:start] + f"  {cid}: {{mode: {mode}" + text[end:]
    session.client("ssm").put_parameter(Name="/perimeter/policy", Value=text, Type="String", Overwrite=True)
    return "/perimeter/policy"


def vpc_and_group(session: Any, name: str = "app", cidr: str = "10.60.0.0/16") -> tuple[str, str]:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    return vpc, gid


def in_use(session: Any, vpc: str, *groups: str) -> str:
    """An ENI on these groups (in a subnet of its own): the groups are in use."""
    ec2 = session.client("ec2")
    base = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"].rsplit(".", 2)[0]
    taken = {
        s["CidrBlock"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    }
    cidr = next(c for i in range(10, 250) if (c := f"{base}.{i}.0/24") not in taken)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=list(groups))["NetworkInterface"]
    return str(eni["NetworkInterfaceId"])


def ingress(session: Any, gid: str) -> list[dict[str, Any]]:
    rules = session.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [gid]}]
    )
    return [r for r in rules["SecurityGroupRules"] if not r["IsEgress"]]


def findings(session: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for page in session.client("securityhub").get_paginator("get_findings").paginate():
        out.update({f["Id"]: f for f in page["Findings"]})
    return out


def finding(session: Any, control: str, resource: str) -> dict[str, Any]:
    return findings(session)[f"perimeter/{control}/{ACCOUNT}/{REGION}/{resource}"]


def state(f: dict[str, Any]) -> tuple[str, str]:
    return f["Compliance"]["Status"], f["RecordState"]


def audit(session: Any, resolver: Any) -> list[dict[str, Any]]:
    items = session.client("dynamodb").scan(TableName=resolver.physical["AuditTable"]["Ref"])["Items"]
    return [json.loads(i["body"]["S"]) for i in items]


# --- the SG controls: what no event reported ---------------------------------------------------


def test_a_world_open_rule_made_while_nothing_listened_is_revoked(session: Any) -> None:
    vpc, gid = vpc_and_group(session)
    in_use(session, vpc, gid)
    ec2 = session.client("ec2")
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            WORLD_SSH,
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ],
    )
    out, resolver = run(session)
    left = ingress(session, gid)
    assert [(r["FromPort"], r["CidrIpv4"]) for r in left] == [(443, "0.0.0.0/0")]  # public port kept
    assert out["revoked"] == {gid: [out["revoked"][gid][0]]}
    assert state(finding(session, "PER-SG-1", gid)) == ("PASSED", "ARCHIVED")
    records = [r for r in audit(session, resolver) if r.get("group_id") == gid]
    assert len(records) == 1 and records[0]["action"] == "revoke-security-group-rules"
    assert [r["from_port"] for r in records[0]["rules"]] == [22]
    # The audit record undoes it exactly.
    restore(session, records[0])
    assert sorted(r["FromPort"] for r in ingress(session, gid)) == [22, 443]


def test_a_violation_without_a_finding_gets_one_and_a_second_sweep_keeps_its_first_sighting(
    session: Any,
) -> None:
    vpc, gid = vpc_and_group(session)
    in_use(session, vpc, gid)
    session.client("ec2").authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    run(session, DryRun="true")
    first = finding(session, "PER-SG-1", gid)
    assert state(first) == ("FAILED", "ACTIVE")
    assert len(ingress(session, gid)) == 1  # dry run: detect only
    out, _ = run(session, DryRun="true")
    again = finding(session, "PER-SG-1", gid)
    assert state(again) == ("FAILED", "ACTIVE")
    assert again["FirstObservedAt"] == first["FirstObservedAt"] and again["CreatedAt"] == first["CreatedAt"]
    assert again["UpdatedAt"] >= first["UpdatedAt"]
    assert out["counts"]["findings_new"] == 0  # known already: no second "new" finding


def test_the_sweep_keeps_the_findings_ledger_so_a_later_event_keeps_the_sweeps_first_times(
    session: Any,
) -> None:
    """The sweep sees a violation first; the next event on the group (SgGuard, which reads only
    the ledger, never Security Hub) must send the sweep's CreatedAt/FirstObservedAt again."""
    vpc, gid = vpc_and_group(session)
    in_use(session, vpc, gid)
    ec2 = session.client("ec2")
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    _, resolver = run(session, DryRun="true")
    first = finding(session, "PER-SG-1", gid)
    assert state(first) == ("FAILED", "ACTIVE")
    table = resolver.physical["FindingsLedgerTable"]["Ref"]
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{gid}"
    item = session.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": arn}})["Item"]
    assert item["created:PER-SG-1"]["S"] == first["CreatedAt"]
    assert item["first:PER-SG-1"]["S"] == first["FirstObservedAt"]
    rdp = {**WORLD_SSH, "FromPort": 3389, "ToPort": 3389}
    before = {r["SecurityGroupRuleId"] for r in ingress(session, gid)}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[rdp])
    created = [r for r in ingress(session, gid) if r["SecurityGroupRuleId"] not in before]
    event = cloudtrail.authorize_event(
        account=ACCOUNT, region=REGION, group_id=gid, permissions=[rdp], created_rules=created
    )
    run(session, "SgGuardFunction", event, DryRun="true")
    again = finding(session, "PER-SG-1", gid)
    assert state(again) == ("FAILED", "ACTIVE")
    assert "3389" in again["Description"]  # the event's own import, not the sweep's
    assert (again["CreatedAt"], again["FirstObservedAt"]) == (first["CreatedAt"], first["FirstObservedAt"])
    # And back: the sweep re-imports the finding with the same first times.
    run(session, DryRun="true")
    third = finding(session, "PER-SG-1", gid)
    assert (third["CreatedAt"], third["FirstObservedAt"]) == (first["CreatedAt"], first["FirstObservedAt"])


def test_a_customer_prefix_list_holding_the_world_counts_in_the_sweep(session: Any) -> None:
    """The union rule in the sweep: SSH from a customer prefix list whose entries hold
    0.0.0.0/0 is world-open SSH; an AWS-managed list on the same port is trusted."""
    vpc, gid = vpc_and_group(session)
    _, trusted = vpc_and_group(session, "trusted", "10.61.0.0/16")
    in_use(session, vpc, gid)
    ec2 = session.client("ec2")
    pl = ec2.create_managed_prefix_list(
        PrefixListName="partners",
        MaxEntries=5,
        AddressFamily="IPv4",
        Entries=[{"Cidr": "203.0.113.0/24"}, {"Cidr": "0.0.0.0/0"}],
    )["PrefixList"]["PrefixListId"]
    aws_pl = next(
        p["PrefixListId"] for p in ec2.describe_managed_prefix_lists()["PrefixLists"] if p["OwnerId"] == "AWS"
    )

    def ssh_from(list_id: str) -> dict[str, Any]:
        return {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "PrefixListIds": [{"PrefixListId": list_id}],
        }

    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[ssh_from(pl)])
    ec2.authorize_security_group_ingress(GroupId=trusted, IpPermissions=[ssh_from(aws_pl)])
    out, _ = run(session)
    assert ingress(session, gid) == []  # revoked
    assert len(ingress(session, trusted)) == 1
    assert state(finding(session, "PER-SG-1", gid)) == ("PASSED", "ARCHIVED")
    assert "revoked" in finding(session, "PER-SG-1", gid)["ProductFields"]["perimeter/action"]
    assert not any(trusted in i for i in out["raised"])


def test_a_finding_fixed_by_hand_is_resolved(session: Any) -> None:
    """SSH from one external /32 scores below the enforce threshold: SgGuard reports it
    (ACTIVE) and leaves it. A person then removes the rule; no event is routed for that on
    this branch (RevokeSecurityGroupIngress is not in SgGuard's rule), so the sweep resolves it."""
    vpc, gid = vpc_and_group(session)
    in_use(session, vpc, gid)
    ec2 = session.client("ec2")
    before = {r["SecurityGroupRuleId"] for r in ingress(session, gid)}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[OFFICE_SSH])
    created = [r for r in ingress(session, gid) if r["SecurityGroupRuleId"] not in before]
    event = cloudtrail.authorize_event(
        account=ACCOUNT, region=REGION, group_id=gid, permissions=[OFFICE_SSH], created_rules=created
    )
    run(session, "SgGuardFunction", event)
    assert state(finding(session, "PER-SG-2", gid)) == ("FAILED", "ACTIVE")
    ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[created[0]["SecurityGroupRuleId"]])
    out, _ = run(session)
    f = finding(session, "PER-SG-2", gid)
    assert state(f) == ("PASSED", "ARCHIVED")
    assert "no longer violates" in f["Description"]
    assert f["ProductFields"]["perimeter/resolved_by"] == out["sweep_id"]


def test_a_deleted_groups_findings_are_archived(session: Any) -> None:
    _vpc, gid = vpc_and_group(session)
    session.client("ec2").authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    run(session, DryRun="true")
    assert state(finding(session, "PER-SG-1", gid)) == ("FAILED", "ACTIVE")
    assert state(finding(session, "PER-SG-2", gid)) == ("FAILED", "ACTIVE")
    session.client("ec2").delete_security_group(GroupId=gid)
    out, _ = run(session, DryRun="true")
    for control in ("PER-SG-1", "PER-SG-2"):
        f = finding(session, control, gid)
        assert state(f) == ("PASSED", "ARCHIVED")
        assert "no longer exists" in f["Description"]
    assert f"perimeter/PER-SG-1/{ACCOUNT}/{REGION}/{gid}" in out["resolved"]


def test_findings_of_other_products_and_controls_the_sweep_does_not_judge_are_left_alone(
    session: Any,
) -> None:
    vpc, gid = vpc_and_group(session)
    in_use(session, vpc, gid)
    run(session)  # the stack exists (Security Hub on)
    hub = session.client("securityhub")
    base = {
        "SchemaVersion": "2018-10-08",
        "AwsAccountId": ACCOUNT,
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": "2026-01-01T00:00:00.000Z",
        "UpdatedAt": "2026-01-01T00:00:00.000Z",
        "Severity": {"Label": "HIGH"},
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/g"}],
        "RecordState": "ACTIVE",
        "Compliance": {"Status": "FAILED"},
    }
    product = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    # PER-GR-1 is left to its events: the sweep does not judge guardrails.
    gr_id = f"perimeter/PER-GR-1/{ACCOUNT}/{REGION}/guardrail/g"
    hub.batch_import_findings(
        Findings=[
            {**base, "Id": gr_id, "ProductArn": product, "GeneratorId": "PER-GR-1"},
            {**base, "Id": "other/1", "ProductArn": product, "GeneratorId": "aws-foundational"},
        ]
    )
    run(session)
    everything = findings(session)
    assert state(everything[gr_id]) == ("FAILED", "ACTIVE")
    assert state(everything["other/1"]) == ("FAILED", "ACTIVE")


# --- PER-REV-1 ---------------------------------------------------------------------------------


def test_an_unused_group_is_reported_only_after_the_grace_period(session: Any) -> None:
    ec2 = session.client("ec2")
    vpc, unused = vpc_and_group(session, "unused")
    used_by_eni = ec2.create_security_group(GroupName="eni", Description="eni", VpcId=vpc)["GroupId"]
    in_use(session, vpc, used_by_eni)
    referenced = ec2.create_security_group(GroupName="ref", Description="ref", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=used_by_eni,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": referenced}],
            }
        ],
    )
    templated = ec2.create_security_group(GroupName="lt", Description="lt", VpcId=vpc)["GroupId"]
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"SecurityGroupIds": [templated]})

    out, resolver = run(session)
    assert out["unused"]["first_seen_now"] == [unused]  # the others are in use
    rev1 = f"perimeter/PER-REV-1/{ACCOUNT}/{REGION}/{unused}"
    assert rev1 not in findings(session)  # within the grace period: nothing yet
    table = resolver.physical["ReviewStateTable"]["Ref"]
    items = session.client("dynamodb").scan(TableName=table)["Items"]
    assert [i["pk"]["S"] for i in items] == [f"unused#{unused}"]

    remember_unused(session, resolver, unused, 31)  # as if the first sweep ran 31 days ago
    run(session)
    assert state(findings(session)[rev1]) == ("FAILED", "ACTIVE")
    assert ec2.describe_security_groups(GroupIds=[unused])["SecurityGroups"]  # detect: kept

    in_use(session, vpc, unused)  # someone uses it again
    run(session)
    assert state(findings(session)[rev1]) == ("PASSED", "ARCHIVED")
    assert session.client("dynamodb").scan(TableName=table)["Items"] == []


def test_enforce_deletes_an_unused_group_after_recording_it_and_restore_recreates_it(session: Any) -> None:
    ec2 = session.client("ec2")
    vpc, gid = vpc_and_group(session, "old-bastion")
    ec2.create_tags(Resources=[gid], Tags=[{"Key": "team", "Value": "ops"}])
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[OFFICE_SSH])
    _, resolver = run(session)
    remember_unused(session, resolver, gid, 45)
    out, resolver = run(session, PolicyParameterName=policy_with(session, PER_REV_1="enforce"))
    assert out["deleted"] == [gid]
    assert gid not in {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    f = finding(session, "PER-REV-1", gid)
    assert state(f) == ("PASSED", "ARCHIVED") and f["ProductFields"]["perimeter/action"] == "deleted"
    (record,) = [r for r in audit(session, resolver) if r["action"] == "delete-security-group"]
    assert record["status"] == "deleted" and record["group"]["name"] == "old-bastion"

    restored = restore(session, record)
    new = ec2.describe_security_groups(GroupIds=[restored["group_id"]])["SecurityGroups"][0]
    assert new["GroupName"] == "old-bastion" and new["VpcId"] == vpc
    assert {t["Key"]: t["Value"] for t in new["Tags"]} == {"team": "ops"}
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [new["GroupId"]]}])
    got = sorted(
        (r["IsEgress"], r["IpProtocol"], r.get("FromPort"), r.get("CidrIpv4"))
        for r in rules["SecurityGroupRules"]
    )
    assert got == [(False, "tcp", 22, "198.51.100.7/32"), (True, "-1", -1, "0.0.0.0/0")]


# --- PER-REV-2 ---------------------------------------------------------------------------------


def test_a_rule_naming_a_deleted_group_is_stale(session: Any) -> None:
    """moto lets a group that another group's rule names be deleted (AWS refuses within a
    VPC, and leaves such rules stale across a peering): the listing no longer has it."""
    ec2 = session.client("ec2")
    vpc, db = vpc_and_group(session, "db")
    in_use(session, vpc, db)
    etl = ec2.create_security_group(GroupName="etl", Description="etl", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=db,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": etl}]}
        ],
    )
    ec2.delete_security_group(GroupId=etl)
    run(session)
    f = finding(session, "PER-REV-2", db)
    assert state(f) == ("FAILED", "ACTIVE") and etl in f["Description"]
    assert len(ingress(session, db)) == 1  # detect by default

    _out, resolver = run(session, PolicyParameterName=policy_with(session, PER_REV_2="enforce"))
    assert ingress(session, db) == []
    assert state(finding(session, "PER-REV-2", db)) == ("PASSED", "ARCHIVED")
    (record,) = [r for r in audit(session, resolver) if r.get("group_id") == db]
    assert record["controls"] == ["PER-REV-2"] and record["rules"][0]["referenced_group_id"] == etl


# --- other kinds: default groups, flow logs, models ------------------------------------------------


def test_default_groups_flow_logs_and_models_go_through_their_own_evaluations(session: Any) -> None:
    ec2 = session.client("ec2")
    vpc, model_sg = vpc_and_group(session, "model")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24")["Subnet"]["SubnetId"]
    default = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=[OFFICE_SSH])
    role = session.client("iam").create_role(RoleName="sm", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    session.client("sagemaker").create_model(
        ModelName="m",
        ExecutionRoleArn=role,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        VpcConfig={"Subnets": [subnet], "SecurityGroupIds": [model_sg]},
    )
    out, _ = run(session)
    # DefaultSgGuard's plan: the default group emptied (nothing depends on it).
    assert ingress(session, default) == []
    assert state(finding(session, "PER-DSG-1", default)) == ("PASSED", "ARCHIVED")
    # FlowLogGuard's evaluation and remediation: a flow log created for the VPC.
    logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    assert [fl["TrafficType"] for fl in logs] == ["ALL"]
    # ModelPosture's evaluation: the group that serves the model is judged as the model tier
    # (PER-SG-4 on its allow-all egress) and is not "unused".
    assert state(finding(session, "PER-SG-4", model_sg)) == ("FAILED", "ACTIVE")
    assert model_sg not in out["unused"]["unused"]
    assert out["models"] == ["model m"]


# --- requests: listings, not one describe per resource ------------------------------------------


class Calls:
    """Counts ``service:Operation`` of every AWS call made while on (botocore's client entry)."""

    def __init__(self, monkeypatch: Any) -> None:
        from botocore.client import BaseClient

        self.counts: dict[str, int] = {}
        self.on = False
        original = BaseClient._make_api_call
        calls = self

        def spy(client: Any, operation: str, params: Any) -> Any:
            if calls.on:
                key = f"{client.meta.service_model.signing_name}:{operation}"
                calls.counts[key] = calls.counts.get(key, 0) + 1
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", spy)


def _sweep_counted(session: Any, calls: Calls, n: int) -> dict[str, int]:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    groups = [
        ec2.create_security_group(GroupName=f"g{i}", Description="g", VpcId=vpc)["GroupId"] for i in range(n)
    ]
    in_use(session, vpc, *groups[:5])
    for gid in groups[::2]:  # half of them world-open
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    run(session)  # the stack's resources exist, the policy and clients are warm
    for gid in groups[::2]:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    template, resolver = prepare(session, ROOT / "template.yaml")
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "SweepFunction")
    calls.counts.clear()
    calls.on = True
    try:
        res = invoke(
            spec, scheduled_event(ACCOUNT, REGION, "perimeter-sweep"), account=ACCOUNT, region=REGION
        )
    finally:
        calls.on = False
    out = res["result"]
    assert out["counts"]["rules_revoked"] == len(groups[::2])
    return dict(calls.counts)


@pytest.mark.parametrize("n", [6, 30])
def test_reads_do_not_grow_with_the_number_of_groups_and_each_offender_costs_one_revoke(
    session: Any, monkeypatch: Any, n: int
) -> None:
    calls = Calls(monkeypatch)
    counts = _sweep_counted(session, calls, n)
    offenders = len(range(0, n, 2))
    assert counts.pop("ec2:RevokeSecurityGroupIngress") == offenders
    assert "ec2:RevokeSecurityGroupEgress" not in counts
    reads = {
        k: v for k, v in counts.items() if any(op in k for op in (":Describe", ":List", ":Get", ":Scan"))
    }
    # One page each (moto returns one page whatever the size), whatever n is.
    assert reads == {
        "ec2:DescribeSecurityGroups": 1,
        "ec2:DescribeNetworkInterfaces": 1,
        "ec2:DescribeVpcs": 1,
        "ec2:DescribeRouteTables": 1,
        "ec2:DescribeVpcEndpoints": 1,
        "ec2:DescribeLaunchTemplateVersions": 1,
        "ec2:DescribeVpcPeeringConnections": 1,
        "ec2:DescribeFlowLogs": 1,
        # PER-NET-1: no VPC has an internet gateway attached, so no route table, ACL, subnet or
        # ENI listing follows
        "ec2:DescribeInternetGateways": 1,
        "sagemaker:ListModels": 1,
        "sagemaker:ListNotebookInstances": 1,
        "securityhub:GetFindings": 1,
        "dynamodb:Scan": 3,  # review state, findings ledger, the undo's exemptions (whole table, once)
        "bedrock:ListMarketplaceModelEndpoints": 1,
        "iam:GetAccountAuthorizationDetails": 1,
    }
    findings = 2 * offenders  # PER-SG-1 and PER-SG-2 per group
    assert counts["securityhub:BatchImportFindings"] == -(-findings // 100)
    assert counts["dynamodb:BatchWriteItem"] == -(-offenders // 25)  # write-ahead audit, 25 a request
    assert "dynamodb:PutItem" not in counts  # no record per group


def test_the_message_of_a_large_sweep_names_the_first_items_and_counts_the_rest(
    session: Any, monkeypatch: Any
) -> None:
    """SNS refuses messages over 256 KB (5000 groups overflowed it): the list is cut, counted."""
    from perimeter.review import service

    monkeypatch.setattr(service, "NOTE_ITEMS", 3)
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]
    groups = [
        ec2.create_security_group(GroupName=f"g{i}", Description="g", VpcId=vpc)["GroupId"] for i in range(5)
    ]
    in_use(session, vpc, *groups)
    for gid in groups:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    _, resolver = run(session, DryRun="true")  # the stack exists; findings raised
    sqs, sns = session.client("sqs"), session.client("sns")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=resolver.physical["FindingsTopic"]["Ref"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    for gid in groups:
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    out, _ = run(session, DryRun="true")  # ten findings resolved
    assert out["counts"]["findings_resolved"] == 10
    (msg,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msg["Body"])
    assert body["counts"]["resolved"] == 10 and len(body["resolved"]) == 3
    assert len(body["finding_ids"]) <= 3


# --- PER-IAM-1 and Bedrock Marketplace endpoints: the event path's evaluations ------------------

INVOKE_ANY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "*"}],
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def test_principals_granting_model_invocation_on_everything_are_found_and_resolved_when_fixed(
    session: Any,
) -> None:
    """Roles, users and customer managed policies from one paginated
    GetAccountAuthorizationDetails (moto implements it), judged by IamGuard's own
    ``principal_issues``/``invoke_issues``; a grant removed by hand resolves on the next sweep."""
    iam = session.client("iam")
    iam.create_role(RoleName="caller", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    iam.put_role_policy(RoleName="caller", PolicyName="invoke", PolicyDocument=json.dumps(INVOKE_ANY))
    iam.create_role(RoleName="quiet", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    arn = iam.create_policy(PolicyName="invoke-all", PolicyDocument=json.dumps(INVOKE_ANY))["Policy"]["Arn"]
    iam.create_user(UserName="analyst")
    iam.attach_user_policy(UserName="analyst", PolicyArn=arn)
    out, _ = run(session)
    for short in ("role/caller", "user/analyst", "policy/invoke-all"):
        f = finding(session, "PER-IAM-1", short)
        assert state(f) == ("FAILED", "ACTIVE"), short
        assert "bedrock:InvokeModel" in f["Description"]
    assert f"perimeter/PER-IAM-1/{ACCOUNT}/{REGION}/role/quiet" not in out["raised"]
    # The same evaluation as the event path: IamGuard on the role says the same.
    from perimeter.adapters.iam import IamAdapter
    from perimeter.iam.service import evaluate_role

    ev, _, _ = evaluate_role(IamAdapter(iam), "caller", ACCOUNT)
    assert [i.summary for i in ev.issues] and all(
        i.summary in finding(session, "PER-IAM-1", "role/caller")["Description"] for i in ev.issues
    )
    iam.delete_role_policy(RoleName="caller", PolicyName="invoke")
    out, _ = run(session)
    f = finding(session, "PER-IAM-1", "role/caller")
    assert state(f) == ("PASSED", "ARCHIVED")
    assert "no longer violates" in f["Description"]
    assert state(finding(session, "PER-IAM-1", "user/analyst")) == ("FAILED", "ACTIVE")


def test_a_grant_through_a_group_is_judged_on_the_group_and_its_member(session: Any) -> None:
    """The sweep reads groups (GetAccountAuthorizationDetails' Filter "Group", each user's
    GroupList) and judges them as IamGuard does: a group's grant is a finding on the group and
    on every member. The sweep must not resolve the member's finding IamGuard opened for a
    grant the user holds only through its group, and reports the group's own."""
    iam = session.client("iam")
    sample = json.loads((ROOT / "events" / "PutGroupPolicy--invoke-on-every-endpoint.json").read_text())
    req = sample["detail"]["requestParameters"]
    iam.create_group(GroupName=req["groupName"])
    iam.create_user(UserName="analyst")
    iam.add_user_to_group(GroupName=req["groupName"], UserName="analyst")
    iam.put_group_policy(
        GroupName=req["groupName"], PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
    )
    iam.create_user(UserName="outsider")  # in no group: nothing to report
    out, _ = run(session, "IamGuardFunction", sample)
    assert out["status"] == "reported"
    member, group = "user/analyst", f"group/{req['groupName']}"
    assert state(finding(session, "PER-IAM-1", member)) == ("FAILED", "ACTIVE")
    assert state(finding(session, "PER-IAM-1", group)) == ("FAILED", "ACTIVE")
    event_text = finding(session, "PER-IAM-1", member)["Description"].split("Seen in ")[0]

    run(session)
    for short in (member, group):
        f = finding(session, "PER-IAM-1", short)
        assert state(f) == ("FAILED", "ACTIVE"), short
        assert "bedrock:InvokeModel" in f["Description"]
    # the same evaluation as the event path: the member's finding says what IamGuard said
    assert finding(session, "PER-IAM-1", member)["Description"].split("Seen in ")[0] == event_text
    assert f"perimeter/PER-IAM-1/{ACCOUNT}/{REGION}/user/outsider" not in findings(session) or state(
        finding(session, "PER-IAM-1", "user/outsider")
    ) == ("PASSED", "ARCHIVED")

    # the group's grant removed by hand: the next sweep resolves the group and its member
    iam.delete_group_policy(GroupName=req["groupName"], PolicyName=req["policyName"])
    run(session)
    for short in (member, group):
        assert state(finding(session, "PER-IAM-1", short)) == ("PASSED", "ARCHIVED"), short


HUB_MODEL = "SageMakerPublicHub/Model/m/1"


def test_a_marketplace_endpoint_outside_a_vpc_is_found(session: Any, monkeypatch: Any) -> None:
    """moto lacks ListMarketplaceModelEndpoints and GetMarketplaceModelEndpoint: botocore's
    Stubber serves both on the sweep's Bedrock client (shapes validated against the service
    model); everything else is moto."""
    import datetime as dt

    from botocore.stub import Stubber
    from perimeter.core import runtime
    from perimeter.review import service

    template, resolver = prepare(session, ROOT / "template.yaml")
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "SweepFunction")
    for k, v in spec.environment.items():
        monkeypatch.setenv(k, v)
    rt = runtime.Runtime(runtime.Settings.from_env(), session=session)
    bedrock = rt.client("bedrock")
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/open-llm"
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with Stubber(bedrock) as stub:
        stub.add_response(
            "list_marketplace_model_endpoints",
            {
                "marketplaceModelEndpoints": [
                    {"endpointArn": arn, "modelSourceIdentifier": "m", "createdAt": now, "updatedAt": now}
                ],
                "nextToken": "p2",
            },
            {},
        )
        stub.add_response(
            "list_marketplace_model_endpoints", {"marketplaceModelEndpoints": []}, {"nextToken": "p2"}
        )
        stub.add_response(
            "get_marketplace_model_endpoint",
            {
                "marketplaceModelEndpoint": {
                    "endpointArn": arn,
                    "modelSourceIdentifier": f"arn:aws:sagemaker:{REGION}:aws:hub-content/{HUB_MODEL}",
                    "createdAt": now,
                    "updatedAt": now,
                    "endpointConfig": {
                        "sageMaker": {
                            "initialInstanceCount": 1,
                            "instanceType": "ml.g5.xlarge",
                            "executionRole": f"arn:aws:iam::{ACCOUNT}:role/sm",
                        }
                    },
                    "endpointStatus": "InService",
                }
            },
            {"endpointArn": arn},
        )
        out = service.handle({"id": "marketplace"}, rt)
        stub.assert_no_pending_responses()
    f = finding(session, "PER-VPC-1", "marketplace-endpoint/open-llm")
    assert state(f) == ("FAILED", "ACTIVE")
    assert "outside your VPC" in f["Description"]
    assert "Marketplace endpoint open-llm" in out["models"]


# --- PER-NET-1 ---------------------------------------------------------------------------------


def _public_model_eni(session: Any, port: int, *, tier: str | None, description: str) -> tuple[str, str, str]:
    """A model ENI with every hop open: gateway, default route, Elastic IP, tcp/<port> from the world."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.90.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    tags = (
        [{"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": tier}]}]
        if tier
        else []
    )
    sg = ec2.create_security_group(
        GroupName=f"serve-{port}", Description="d", VpcId=vpc, TagSpecifications=tags
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg], Description=description)[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)
    return vpc, igw, eni


def test_sweep_reports_a_reachable_model_eni_and_resolves_it_once_a_hop_closes(session: Any) -> None:
    # HTTPS from the world is allowed on an untagged group (public_ports), so nothing revokes it;
    # the ENI is SageMaker's by its description: the model tier, reachable.
    vpc, igw, eni = _public_model_eni(session, 443, tier=None, description="SageMaker endpoint deepseek-r1")
    out, _ = run(session)
    assert out["reachable_enis"] == [eni]
    f = finding(session, "PER-NET-1", eni)
    assert state(f) == ("FAILED", "ACTIVE") and igw in f["Description"]
    session.client("ec2").detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    run(session)
    assert state(finding(session, "PER-NET-1", eni)) == ("PASSED", "ARCHIVED")


def test_sweep_judges_reachability_after_its_own_revokes(session: Any) -> None:
    # A model-tier group open to the world on 8080: PER-SG-1 (enforce) revokes the rule, so the
    # path is closed by the time PER-NET-1 judges it.
    _, _, eni = _public_model_eni(session, 8080, tier="model", description="vLLM server")
    out, _ = run(session)
    assert out["counts"]["rules_revoked"] == 1 and out["reachable_enis"] == []
    assert f"perimeter/PER-NET-1/{ACCOUNT}/{REGION}/{eni}" not in findings(session)
