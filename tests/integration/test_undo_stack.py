"""Undo and exemptions as the stack wires them (issue 11): every function run through the local
runner with the environment ``template.yaml`` gives it (tables, ``PERIMETER_EXEMPTIONS_TABLE``,
``PERIMETER_EXEMPT_DAYS``), on moto.

- a default-SG migration undone from Security Hub: the ENIs back on the default group, its rules
  back, and DefaultSgGuard leaves the restored state alone while the exemption lasts;
- the sweep honours the undo's exemptions and lists every exemption ending within a week
  (policy file, tag, undo) in its summary and its message;
- ``perimeter restore FINDING_ID`` on the CLI does what the Security Hub action does.

moto lacks BatchUpdateFindings: ``FindingUpdates`` answers it at ``BaseClient._make_api_call``
(after botocore validated the request) and applies Note and Workflow to moto's stored finding.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto.securityhub.models import securityhub_backends
from perimeter.core import permissions
from perimeter_local.account import prepare
from perimeter_local.cli import main as cli_main
from perimeter_local.cli import scheduled_event
from perimeter_local.invoke import invoke
from perimeter_local.template import functions

from tests.harness import moto_account
from tests.integration.dsg_support import build_vpc, groups_of, modify_eni_event, rules_of

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"
SAMPLE = ROOT / "events" / "SecurityHubCustomAction--undo-and-exempt.json"


def today() -> dt.date:
    """Read at each use: a run may cross midnight (UTC), and so does the handler's clock."""
    return dt.datetime.now(dt.UTC).date()


WORLD_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


class FindingUpdates:
    def __init__(self, monkeypatch: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        original = BaseClient._make_api_call
        updates = self

        def answer(client: BaseClient, operation: str, params: Any) -> Any:
            if operation != "BatchUpdateFindings":
                return original(client, operation, params)
            model = client.meta.service_model.operation_model(operation)
            client._serializer.serialize_to_request(params, model)  # validates against the model
            updates.calls.append(params)
            for f in securityhub_backends[ACCOUNT][REGION].findings:
                if f.id in {i["Id"] for i in params["FindingIdentifiers"]}:
                    f.data["Note"] = dict(params["Note"])
                    if "Workflow" in params:
                        f.data["Workflow"] = dict(params["Workflow"])
            return {"ProcessedFindings": params["FindingIdentifiers"], "UnprocessedFindings": []}

        monkeypatch.setattr(BaseClient, "_make_api_call", answer)


@pytest.fixture
def session(monkeypatch: Any) -> Any:
    with moto_account(monkeypatch, REGION):
        yield boto3.session.Session()


def run(session: Any, function: str, event: dict[str, Any], **params: str) -> dict[str, Any]:
    template, resolver = prepare(session, ROOT / "template.yaml", parameters=params)
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == function)
    res = invoke(spec, event, account=ACCOUNT, region=REGION)
    assert res["ok"], res.get("traceback")
    return res["result"]  # type: ignore[no-any-return]


def custom_action(findings: list[dict[str, Any]]) -> dict[str, Any]:
    event = json.loads(SAMPLE.read_text())
    event["detail"]["findings"] = findings
    return event


def stored(session: Any, control: str, resource: str) -> dict[str, Any]:
    [f] = [
        f
        for f in session.client("securityhub").get_findings()["Findings"]
        if f["GeneratorId"] == control and f["Id"].endswith(f"/{resource}")
    ]
    return f


def _rule_set(ec2: Any, gid: str) -> set[tuple[Any, ...]]:
    return {
        (r["IsEgress"], r["IpProtocol"], r.get("CidrIpv4"), r.get("ReferencedGroupInfo", {}).get("GroupId"))
        for r in rules_of(ec2, gid)
    }


def test_a_default_sg_migration_undone_from_security_hub_stays_undone_while_exempt(
    session: Any, monkeypatch: Any
) -> None:
    updates = FindingUpdates(monkeypatch)
    ec2 = session.client("ec2")
    vpc = build_vpc(ec2, instances=0, enis=1)
    before_groups, before_rules = groups_of(ec2, vpc.enis), _rule_set(ec2, vpc.default_sg)
    out = run(session, "DefaultSgGuardFunction", modify_eni_event(vpc.enis[0], [vpc.default_sg]))
    assert out["status"] == "remediated"
    assert groups_of(ec2, vpc.enis) != before_groups and not rules_of(ec2, vpc.default_sg)
    finding = stored(session, "PER-DSG-1", vpc.default_sg)

    [result] = run(session, "UndoFunction", custom_action([finding]), ExemptDays="3")["results"]
    assert result["status"] == "undone"
    assert result["exempt_until"] == (today() + dt.timedelta(days=3)).isoformat()  # the stack's parameter
    assert groups_of(ec2, vpc.enis) == before_groups
    assert _rule_set(ec2, vpc.default_sg) == before_rules
    [call] = updates.calls
    assert call["Workflow"] == {"Status": "SUPPRESSED"} and "Undone by" in call["Note"]["Text"]

    # The restore's own call comes back through CloudTrail (UndoFunction's role is not one of
    # Perimeter's ignored roles: its changes are judged): exempt, so nothing moves again.
    echo = modify_eni_event(
        vpc.enis[0],
        [vpc.default_sg],
        actor_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/perimeter-undo-us-east-1/x",
    )
    again = run(session, "DefaultSgGuardFunction", echo)
    assert again["status"] != "remediated", again
    assert groups_of(ec2, vpc.enis) == before_groups
    assert _rule_set(ec2, vpc.default_sg) == before_rules


def test_the_sweep_honours_the_undo_and_lists_exemptions_expiring_within_a_week(
    session: Any, monkeypatch: Any
) -> None:
    FindingUpdates(monkeypatch)
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    soon = (today() + dt.timedelta(days=5)).isoformat()
    later = (today() + dt.timedelta(days=60)).isoformat()
    tagged = ec2.create_security_group(
        GroupName="partner-sftp",
        Description="t",
        VpcId=vpc,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [
                    {"Key": "perimeter:exempt", "Value": f"PER-SG-1+PER-SG-2 until={soon} reason=SEC-1"}
                ],
            }
        ],
    )["GroupId"]
    far = ec2.create_security_group(
        GroupName="far",
        Description="t",
        VpcId=vpc,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": "perimeter:exempt", "Value": f"all until={later} reason=x"}],
            }
        ],
    )["GroupId"]
    undone = ec2.create_security_group(GroupName="undone", Description="t", VpcId=vpc)["GroupId"]
    for gid in (tagged, far, undone):
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    # The undo's exemption of the third group's rule, ending in two days.
    from perimeter.core.exemptions import undo_items
    from perimeter.core.rules import Rule

    rule = Rule(undone, False, "tcp", 22, 22, cidr="0.0.0.0/0")
    prepare(session, ROOT / "template.yaml")
    items = undo_items(
        resource_id=undone,
        controls=("PER-SG-1", "PER-SG-2"),
        rules=[rule],
        until=today() + dt.timedelta(days=2),
        actor="arn:aws:sts::123456789012:assumed-role/SecOps/rita",
        reason="undo of x",
        audit_id="x",
        finding_id=None,
        now="2026-11-29T00:00:00Z",
    )
    for item in items:
        session.client("dynamodb").put_item(TableName="perimeter-ExemptionsTable", Item=item)

    out = run(session, "SweepFunction", scheduled_event(ACCOUNT, REGION, "perimeter-sweep"))
    assert out["revoked"] == {}, "every world-open rule here is exempt"
    for gid in (tagged, far, undone):
        assert stored(session, "PER-SG-1", gid)["Workflow"]["Status"] == "SUPPRESSED"
    expiring = out["exemptions_expiring"]
    assert [(x["source"], x["expires"]) for x in expiring] == [
        ("undo", (today() + dt.timedelta(days=2)).isoformat()),
        ("undo", (today() + dt.timedelta(days=2)).isoformat()),
        ("tag", soon),
    ]
    assert any(tagged in x["exemption"] for x in expiring) and not any(
        far in x["exemption"] for x in expiring
    )
    assert any(line.startswith("expiring") and undone in line for line in out["lines"])


def test_cli_restore_finding_id_undoes_and_exempts(
    session: Any, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    updates = FindingUpdates(monkeypatch)
    from perimeter_local import cloudtrail

    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="g", Description="t", VpcId=vpc)["GroupId"]
    resp = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
    event = cloudtrail.authorize_event(
        account=ACCOUNT,
        region=REGION,
        group_id=gid,
        permissions=[WORLD_SSH],
        created_rules=resp["SecurityGroupRules"],
    )
    assert run(session, "SgGuardFunction", event)["status"] == "remediated"
    finding = stored(session, "PER-SG-1", gid)

    assert cli_main(["restore", finding["Id"], "--days", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "undone" and out["exempt_until"] == (today() + dt.timedelta(days=2)).isoformat()
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])
    assert any(
        r.get("CidrIpv4") == "0.0.0.0/0" and r.get("FromPort") == 22 for r in rules["SecurityGroupRules"]
    )
    items = session.client("dynamodb").scan(TableName="perimeter-ExemptionsTable")["Items"]
    assert {i["pk"]["S"] for i in items} == {gid} and len(items) == 2
    [call] = updates.calls
    assert call["Note"]["UpdatedBy"].startswith("arn:aws:") and call["Workflow"]["Status"] == "SUPPRESSED"
    # Again: a no-op, and the audit-id form keeps working beside it.
    assert cli_main(["restore", finding["Id"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "already-undone"
    assert cli_main(["audit", "list"]) == 0


# --- the remediations that are not rules taken away: a deleted group, a created flow log ------


def _policy(session: Any, *edits: tuple[str, str]) -> str:
    text = (ROOT / "policy" / "default.yaml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    session.client("ssm").put_parameter(Name="/perimeter/policy", Value=text, Type="String", Overwrite=True)
    return "/perimeter/policy"


def test_undo_of_a_group_deletion_recreates_it_with_its_rules_and_tags_and_exempts_the_new_id(
    session: Any, monkeypatch: Any
) -> None:
    """PER-REV-1 deleted an unused group; the Security Hub action brings it back (name,
    description, tags, exactly its rules; a new id, which the note names) and exempts the new
    group from PER-REV-1. Pressed again: a no-op."""
    from perimeter_local.review_seed import remember_unused

    updates = FindingUpdates(monkeypatch)
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(
        GroupName="old-bastion",
        Description="bastion, 2024",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "ops"}]}],
    )["GroupId"]
    office = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.7/32"}]}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[office])
    sweep = scheduled_event(ACCOUNT, REGION, "perimeter-sweep")
    run(session, "SweepFunction", sweep)
    _, resolver = prepare(session, ROOT / "template.yaml")
    remember_unused(session, resolver, gid, 45)
    enforce = _policy(session, ("  PER-REV-1: {mode: detect", "  PER-REV-1: {mode: enforce"))
    assert run(session, "SweepFunction", sweep, PolicyParameterName=enforce)["deleted"] == [gid]
    finding = stored(session, "PER-REV-1", gid)
    assert finding["ProductFields"]["perimeter/audit_id"]

    calls: list[str] = []
    answer = BaseClient._make_api_call

    def record(client: BaseClient, operation: str, params: Any) -> Any:
        calls.append(f"{client.meta.service_model.signing_name}:{operation}")
        return answer(client, operation, params)

    template, resolver = prepare(session, ROOT / "template.yaml")  # the stack, before recording
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "UndoFunction")
    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    res = invoke(spec, custom_action([finding]), account=ACCOUNT, region=REGION)
    monkeypatch.setattr(BaseClient, "_make_api_call", answer)
    assert res["ok"], res.get("traceback")
    out = res["result"]
    # the undo of a deletion stays within UndoFunction's declared (and granted) actions
    assert {"ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress"} <= set(calls)
    assert set(calls) <= permissions.FUNCTIONS["UndoFunction"], (
        set(calls) - permissions.FUNCTIONS["UndoFunction"]
    )
    [result] = out["results"]
    assert result["status"] == "undone", result
    new_id = result["restored"]["group_id"]
    assert new_id != gid and result["restored"]["deleted_group_id"] == gid
    new = ec2.describe_security_groups(GroupIds=[new_id])["SecurityGroups"][0]
    assert (new["GroupName"], new["Description"], new["VpcId"]) == ("old-bastion", "bastion, 2024", vpc)
    assert {t["Key"]: t["Value"] for t in new["Tags"]} == {"team": "ops"}
    assert _rule_set(ec2, new_id) == {
        (False, "tcp", "198.51.100.7/32", None),
        (True, "-1", "0.0.0.0/0", None),
    }
    items = session.client("dynamodb").scan(TableName="perimeter-ExemptionsTable")["Items"]
    assert [(i["pk"]["S"], i["control"]["S"], i["until"]["S"]) for i in items] == [
        (new_id, "PER-REV-1", (today() + dt.timedelta(days=7)).isoformat())
    ]
    [call] = updates.calls
    assert gid in call["Note"]["Text"] and new_id in call["Note"]["Text"]
    assert call["Note"]["Text"].startswith("Undone by ")

    again = run(session, "UndoFunction", custom_action([stored(session, "PER-REV-1", gid)]))
    assert again["results"][0]["status"] == "already-undone"
    named = [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] == "old-bastion"]
    assert [g["GroupId"] for g in named] == [new_id], "one group recreated, not two"
    assert len(updates.calls) == 1


def test_undo_of_a_created_flow_log_is_refused_with_what_to_do_and_changes_nothing(
    session: Any, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flow log PER-FL-1 created removed nothing, and deleting it would remove a security
    control on one click: the action (and ``perimeter restore FINDING_ID``) refuse, the note
    says how to exempt the VPC and which audit id deletes exactly that flow log."""
    from perimeter.core.events import wrap_in_envelope
    from perimeter_local.cloudtrail import record

    updates = FindingUpdates(monkeypatch)
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    everywhere = _policy(session, ("  scope: model-vpcs\n", "  scope: all-vpcs\n"))
    event = wrap_in_envelope(
        record(
            "CreateVpc",
            "ec2.amazonaws.com",
            {"cidrBlock": "10.91.0.0/16"},
            {"vpc": {"vpcId": vpc, "state": "pending"}},
            account=ACCOUNT,
            region=REGION,
        )
    )
    assert (
        run(session, "FlowLogGuardFunction", event, PolicyParameterName=everywhere)["status"] == "remediated"
    )
    [fl] = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    finding = stored(session, "PER-FL-1", vpc)
    audit_id = finding["ProductFields"]["perimeter/audit_id"]

    out = run(session, "UndoFunction", custom_action([finding]))
    [result] = out["results"]
    assert result["status"] == "refused"
    assert [f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]] == [fl["FlowLogId"]]
    assert session.client("dynamodb").scan(TableName="perimeter-ExemptionsTable")["Items"] == []
    [call] = updates.calls
    text = call["Note"]["Text"]
    assert len(text) <= 512 and "Workflow" not in call
    assert text.startswith("Perimeter: not undone.")
    assert f"perimeter restore {audit_id}" in text and "PER-FL-1 until=" in text and fl["FlowLogId"] in text

    # The CLI's finding form answers the same (exit 1), and the audit-id form still deletes it.
    assert cli_main(["restore", finding["Id"]]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "refused"
    assert ec2.describe_flow_logs()["FlowLogs"]
    assert cli_main(["restore", audit_id]) == 0
    assert json.loads(capsys.readouterr().out)["deleted_flow_logs"] == [fl["FlowLogId"]]
    assert ec2.describe_flow_logs()["FlowLogs"] == []
