"""Undo from Security Hub and exemptions people manage (issue 11), through the real handlers on moto.

SgGuard remediates a world-open rule; the Security Hub custom action "Perimeter undo" (the
sample event's shape, carrying the finding as Security Hub stored it) reaches UndoFunction,
which restores the rule from the audit record, writes a time-boxed exemption and notes the
finding. Then the exemption is tested the way it matters: the identical rule opened again is
left alone while it lasts, any other offending rule is not, and after expiry the rule is
revoked again. Tag exemptions (valid, expired, malformed) and the sweep's report of those
expiring soon follow.

moto lacks Security Hub's BatchUpdateFindings (FACTS.md): a ``before-call`` hook answers it
after botocore has validated the request against the service model, and applies the Note and
Workflow to moto's stored finding, so the test reads the finding back through GetFindings.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import perimeter.core.runtime
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse
from moto.securityhub.models import securityhub_backends
from perimeter.core.runtime import Runtime, Settings

from tests.corpus import MOTO_ACCOUNT, REGION
from tests.integration.test_sg_handler import (  # noqa: F401 - env is a fixture
    AUDIT_TABLE,
    LambdaContext,
    authorize,
    env,
    event_id,
    tcp,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "SecurityHubCustomAction--undo-and-exempt.json"
EXEMPTIONS_TABLE = "perimeter-exemptions"
UNDO_ROLE = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/SecOps/rita"
WORLD_SSH = (False, "tcp", 22, 22, "0.0.0.0/0")


def today() -> dt.date:
    """Read at each use: a run may cross midnight (UTC), and so does the handler's clock."""
    return dt.datetime.now(dt.UTC).date()


def _load(name: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location(
        f"{name}_app_under_test", ROOT / "functions" / name / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler  # type: ignore[no-any-return]


class FindingUpdates:
    """BatchUpdateFindings for moto (which lacks it): answered in a before-call hook, after
    botocore validated the parameters, and applied to the stored finding."""

    def __init__(self, session: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_next = False
        session.events.register("before-call.securityhub.BatchUpdateFindings", self._answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("injected: Security Hub unavailable")
        body = json.loads(params["body"])
        self.calls.append(body)
        backend = securityhub_backends[MOTO_ACCOUNT][REGION]
        done, missing = [], []
        for ident in body["FindingIdentifiers"]:
            for f in backend.findings:
                if f.id == ident["Id"]:
                    f.data["Note"] = {**body["Note"], "UpdatedAt": "2026-11-29T00:00:00Z"}
                    if "Workflow" in body:
                        f.data["Workflow"] = body["Workflow"]
                    done.append(ident)
                    break
            else:  # as Security Hub answers for a finding it does not hold
                missing.append(
                    {"FindingIdentifier": ident, "ErrorCode": "FindingNotFound", "ErrorMessage": "-"}
                )
        raw = AWSResponse("https://securityhub", 200, {}, MockRawResponse(b"{}"))
        return raw, {"ProcessedFindings": done, "UnprocessedFindings": missing}


@pytest.fixture
def undo_env(env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: F811
    """The SgGuard env plus the exemptions table, both functions on one runtime."""
    env.ddb.create_table(
        TableName=EXEMPTIONS_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("PERIMETER_EXEMPTIONS_TABLE", EXEMPTIONS_TABLE)
    monkeypatch.setenv("PERIMETER_EXEMPT_DAYS", "7")
    env.updates = FindingUpdates(env.session)
    perimeter.core.runtime.reset(Runtime(Settings.from_env(), session=env.session))
    env.undo = _load("undo")
    yield env


def custom_action(findings: list[dict[str, Any]], **detail: Any) -> dict[str, Any]:
    """The sample custom-action event carrying these findings (as Security Hub stored them)."""
    event = json.loads(SAMPLE.read_text())
    event["detail"]["findings"] = copy.deepcopy(findings)
    event["detail"].update(detail)
    return event


def exemption_items(e: Any, resource: str) -> list[dict[str, Any]]:
    return e.ddb.query(
        TableName=EXEMPTIONS_TABLE,
        KeyConditionExpression="pk = :r",
        ExpressionAttributeValues={":r": {"S": resource}},
    )["Items"]


def stored_finding(e: Any, finding_id: str) -> dict[str, Any]:
    [f] = [f for f in e.hub.get_findings()["Findings"] if f["Id"] == finding_id]
    return f


def reopen(e: Any, gid: str, perm: dict[str, Any]) -> dict[str, Any]:
    """A person removes the rule, then opens it again: the Authorize event for the second call."""
    e.ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    return authorize(e, gid, [perm])


def remediate_world_ssh(e: Any, gid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    perm = tcp(22)
    perm["IpRanges"][0]["Description"] = "partner sftp bastion"
    event = authorize(e, gid, [perm])
    assert e.invoke(event)["status"] == "remediated"
    assert WORLD_SSH not in e.rules(gid)
    return perm, e.findings(gid)["PER-SG-1"]


def test_undo_from_security_hub_restores_the_rule_exempts_it_and_notes_the_finding(undo_env: Any) -> None:
    e = undo_env
    gid = e.group()
    _, finding = remediate_world_ssh(e, gid)
    assert finding["Compliance"]["Status"] == "PASSED"
    audit_id = finding["ProductFields"]["perimeter/audit_id"]

    out = e.undo(custom_action([finding], userIdentity={"arn": UNDO_ROLE}), LambdaContext())
    [result] = out["results"]
    until = (today() + dt.timedelta(days=7)).isoformat()
    assert result["status"] == "undone" and result["exempt_until"] == until

    # The rule is back, with its description (read back from EC2).
    rules = e.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])
    [back] = [r for r in rules["SecurityGroupRules"] if not r["IsEgress"] and r.get("FromPort") == 22]
    assert back["CidrIpv4"] == "0.0.0.0/0" and back["Description"] == "partner sftp bastion"
    # One exemption per control the rule was revoked under, for that rule's content, with a TTL.
    items = exemption_items(e, gid)
    assert {i["control"]["S"] for i in items} == {"PER-SG-1", "PER-SG-2"}
    assert all(i["rule_text"]["S"] == "tcp/22 from 0.0.0.0/0" for i in items)
    assert all(i["until"]["S"] == until and int(i["expires_at"]["N"]) > 0 for i in items)
    assert all(i["actor"]["S"] == UNDO_ROLE for i in items)
    # The audit record says it was undone, by whom, until when.
    audit = e.ddb.get_item(TableName=AUDIT_TABLE, Key={"pk": {"S": audit_id}})["Item"]
    assert audit["restored_by"]["S"] == UNDO_ROLE and audit["exempt_until"]["S"] == until
    # The finding: noted and suppressed (BatchUpdateFindings, validated against the model).
    [call] = e.updates.calls
    assert call["Workflow"] == {"Status": "SUPPRESSED"}
    noted = stored_finding(e, finding["Id"])
    assert noted["Note"]["Text"].startswith(f"Undone by {UNDO_ROLE} until {until}")
    assert noted["Note"]["UpdatedBy"] == UNDO_ROLE and noted["Workflow"]["Status"] == "SUPPRESSED"

    # While exempt: the identical rule opened again stays, and its finding says why ...
    again = reopen(e, gid, tcp(22))
    assert e.invoke(again)["status"] != "remediated"
    assert WORLD_SSH in e.rules(gid)
    f1 = e.findings(gid)["PER-SG-1"]
    assert (f1["Compliance"]["Status"], f1["RecordState"], f1["Workflow"]["Status"]) == (
        "FAILED",
        "ACTIVE",
        "SUPPRESSED",
    )
    assert f"until {until}" in f1["Description"] and "undone by" in f1["Description"]
    assert f1["ProductFields"]["perimeter/action"] == "exempt"
    # ... but any other offending rule of the group is revoked as ever.
    rdp = authorize(e, gid, [tcp(3389)])
    assert e.invoke(rdp)["status"] == "remediated"
    assert (False, "tcp", 3389, 3389, "0.0.0.0/0") not in e.rules(gid)
    assert WORLD_SSH in e.rules(gid)

    # After expiry (the items' last day moved to yesterday): revoked again.
    yesterday = (today() - dt.timedelta(days=1)).isoformat()
    for item in items:
        e.ddb.put_item(TableName=EXEMPTIONS_TABLE, Item={**item, "until": {"S": yesterday}})
    late = reopen(e, gid, tcp(22))
    assert e.invoke(late)["status"] == "remediated"
    assert WORLD_SSH not in e.rules(gid)


def test_undo_twice_is_a_no_op(undo_env: Any) -> None:
    e = undo_env
    gid = e.group()
    _, finding = remediate_world_ssh(e, gid)
    event = custom_action([finding])
    assert e.undo(event, LambdaContext())["results"][0]["status"] == "undone"
    items = exemption_items(e, gid)
    e.ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[tcp(22)])  # removed by hand since
    e.ops()
    [result] = e.undo(event, LambdaContext())["results"]
    assert result["status"] == "already-undone" and result["restored_by"] == "a Security Hub user"
    calls = e.ops()
    assert not [c for c in calls if c.startswith(("Authorize", "Put", "Update"))], calls
    assert WORLD_SSH not in e.rules(gid), "a repeated undo put nothing back"
    assert exemption_items(e, gid) == items
    assert len(e.updates.calls) == 1


def test_a_failed_note_fails_the_undo_and_the_retry_finishes_it(undo_env: Any) -> None:
    e = undo_env
    gid = e.group()
    _, finding = remediate_world_ssh(e, gid)
    audit_id = finding["ProductFields"]["perimeter/audit_id"]
    event = custom_action([finding])
    e.updates.fail_next = True
    with pytest.raises(RuntimeError, match="injected"):
        e.undo(event, LambdaContext())
    assert WORLD_SSH in e.rules(gid) and exemption_items(e, gid), "restored and exempt before the note"
    audit = e.ddb.get_item(TableName=AUDIT_TABLE, Key={"pk": {"S": audit_id}})["Item"]
    assert "restored_at" not in audit, "not marked: the retry must do it again"
    # Lambda's retry: every step again, the note this time, then the mark.
    [result] = e.undo(event, LambdaContext())["results"]
    assert result["status"] == "undone"
    assert stored_finding(e, finding["Id"])["Workflow"]["Status"] == "SUPPRESSED"
    assert WORLD_SSH in e.rules(gid) and len(exemption_items(e, gid)) == 2
    assert e.undo(event, LambdaContext())["results"][0]["status"] == "already-undone"


def test_undo_of_a_finding_without_a_remediation_changes_nothing(undo_env: Any) -> None:
    e = undo_env
    gid = e.group(tags={"perimeter:tier": "model"})
    # PER-SG-4 is detect-only in the default policy: reported, nothing removed
    event = authorize(e, gid, [{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}], egress=True)
    assert e.invoke(event)["status"] == "reported"
    detected = [f for f in e.findings(gid).values() if "perimeter/audit_id" not in f["ProductFields"]]
    assert detected
    e.ops()
    [result] = e.undo(custom_action(detected[:1]), LambdaContext())["results"]
    assert result["status"] == "nothing-to-undo"
    assert [c for c in e.ops() if not c.startswith(("Get", "Query"))] == []
    [note] = e.updates.calls  # the note only: no Workflow change
    assert "nothing to undo" in note["Note"]["Text"] and "Workflow" not in note
    assert exemption_items(e, gid) == []


def test_an_undo_of_a_finding_security_hub_no_longer_holds_is_said_not_retried(undo_env: Any) -> None:
    """A custom action naming a finding Security Hub does not hold (deleted since, or an event
    made up): BatchUpdateFindings answers FindingNotFound. A retry could not change that, so the
    result says it and nothing raises (a raise would retry twice and end in the DLQ)."""
    e = undo_env
    gid = e.group()
    ghost = {
        "Id": f"perimeter/PER-SG-1/{MOTO_ACCOUNT}/{REGION}/{gid}",
        "ProductArn": f"arn:aws:securityhub:{REGION}:{MOTO_ACCOUNT}:product/{MOTO_ACCOUNT}/default",
        "ProductFields": {},
    }
    [result] = e.undo(custom_action([ghost]), LambdaContext())["results"]
    assert result["status"] == "nothing-to-undo"
    assert result["note"] == "not noted: Security Hub does not hold the finding"
    assert [c["FindingIdentifiers"][0]["Id"] for c in e.updates.calls] == [ghost["Id"]]
    assert exemption_items(e, gid) == []


def test_a_malformed_custom_action_event_raises_the_one_validation_error(undo_env: Any) -> None:
    from perimeter.core.events import MalformedEvent

    bad = custom_action([])
    bad["detail"]["findings"] = [{"no": "id"}]
    with pytest.raises(MalformedEvent, match=r"detail\.findings"):
        undo_env.undo(bad, LambdaContext())
    with pytest.raises(MalformedEvent, match="not a Security Hub custom action"):
        undo_env.undo({**bad, "detail-type": "Security Hub Findings - Imported"}, LambdaContext())


# --- the perimeter:exempt tag ---------------------------------------------------------------


def _tagged(e: Any, value: str) -> str:
    return str(e.group(tags={"perimeter:exempt": value}))


def test_a_valid_tag_exempts_and_the_finding_is_suppressed_with_reason_and_expiry(undo_env: Any) -> None:
    e = undo_env
    until = (today() + dt.timedelta(days=30)).isoformat()
    gid = _tagged(e, f"PER-SG-1+PER-SG-2 until={until} reason=partner SFTP SEC-123")
    assert e.invoke(authorize(e, gid, [tcp(22)]))["status"] != "remediated"
    assert WORLD_SSH in e.rules(gid)
    for control in ("PER-SG-1", "PER-SG-2"):
        f = e.findings(gid)[control]
        assert (f["Compliance"]["Status"], f["RecordState"], f["Workflow"]["Status"]) == (
            "FAILED",
            "ACTIVE",
            "SUPPRESSED",
        )
        assert f"tag perimeter:exempt until {until}: partner SFTP SEC-123" in f["Description"]
    # Only the controls it names: all traffic from the world is PER-SG-3 as well, and revoked.
    assert (
        e.invoke(authorize(e, gid, [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]))["status"]
        == "remediated"
    )


def test_an_expired_tag_protects_nothing(undo_env: Any) -> None:
    e = undo_env
    gid = _tagged(e, f"all until={(today() - dt.timedelta(days=1)).isoformat()} reason=load test")
    assert e.invoke(authorize(e, gid, [tcp(22)]))["status"] == "remediated"
    assert WORLD_SSH not in e.rules(gid)


@pytest.mark.parametrize(
    "value",
    [
        "PER-SG-1;until=2026-12-31;reason=semicolons",  # a character tag values may not hold
        "PER-SG-1 until=31/12/2026 reason=not a date",
        "PER-SG-9 until=2026-12-31 reason=no such control",
        "PER-SG-1 reason=no until",
        f"all until={(today() + dt.timedelta(days=400)).isoformat()} reason=too long",
    ],
)
def test_a_malformed_tag_protects_nothing_and_is_reported(undo_env: Any, value: str) -> None:
    e = undo_env
    gid = _tagged(e, value)
    assert e.invoke(authorize(e, gid, [tcp(22)]))["status"] == "remediated"
    assert WORLD_SSH not in e.rules(gid)
    f = e.findings(gid)["PER-EXM-1"]
    assert (f["Compliance"]["Status"], f["RecordState"]) == ("FAILED", "ACTIVE")
    assert "exempts nothing" in f["Description"] and f["ProductFields"]["perimeter/tag_value"] == value
