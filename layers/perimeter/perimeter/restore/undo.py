"""Undo a remediation and exempt what it restored, from Security Hub or the CLI.

A reviewer selects Perimeter findings in Security Hub and chooses the custom action "Perimeter
undo" (the stack's ``AWS::SecurityHub::ActionTarget``); Security Hub sends one "Security Hub
Findings - Custom Action" event per finding to EventBridge, whose rule invokes UndoFunction.
``perimeter restore FINDING_ID`` does the same from a terminal. For each finding:

1. its audit record (``ProductFields["perimeter/audit_id"]``, written ahead of the remediation)
   says exactly what Perimeter removed or changed; a record already undone is a no-op;
2. the exemption is written **first** (DynamoDB, ``until`` = today + ``PERIMETER_EXEMPT_DAYS``,
   TTL attribute ``expires_at``): the restore is itself a CloudTrail call that Perimeter judges,
   and by then the exemption must exist. A security-group rule is exempt by its content
   (group, direction, protocol, ports, peer) for the controls it was revoked under, so an
   identical rule opened again while the exemption lasts is left alone, and any other
   offending rule is not; a default-SG migration exempts the default group from PER-DSG-1/2;
3. the restore (``perimeter.restore``, the CLI's own code): rules re-authorized with their
   descriptions, ENIs given back their groups, every step tolerant of having been done;
4. the finding gets a note, "Undone by <actor> until <date>", and Workflow ``SUPPRESSED``
   (BatchUpdateFindings): the finding stays ACTIVE/FAILED while the restored rule is there,
   because it is true, but a reviewer has decided about it, and the note says who and until
   when. When the exemption ends, the next event or sweep revokes the rule again and the finding
   goes back to NEW/RESOLVED with the new remediation;
5. last, the record is marked restored (a conditional write: of two concurrent undos one wins).
   A failure before this mark (the note refused, a timeout) leaves it unmarked: Lambda's retry
   does every step again, each tolerating having been done.

Two remediations are not rules taken away. A group PER-REV-1 deleted comes back (name,
description, tags, exactly its rules) under a new id, which the note names, exempt from
PER-REV-1 until the exemption ends. A flow log PER-FL-1 created is *refused*: it removed
nothing, and undoing it would remove a security control on one click; the note says how to
exempt the VPC and which ``perimeter restore <audit-id>`` deletes exactly that flow log.

Who: the custom-action event documented by Security Hub carries the findings and the action,
not the user who chose it. The actor is taken from the event where it names one
(``detail.userIdentity.arn`` / ``principalId``) and is otherwise "a Security Hub user"; the CLI
names the caller (STS GetCallerIdentity).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from perimeter.core.events import MalformedEvent
from perimeter.core.exemptions import undo_items
from perimeter.core.report import iso_now
from perimeter.core.rules import Rule
from perimeter.core.telemetry import logger

CUSTOM_ACTION_DETAIL_TYPE = "Security Hub Findings - Custom Action"
#: Audit actions whose remediation the undo restores and exempts.
UNDOABLE = {"revoke-security-group-rules", "default-sg-migration", "delete-security-group"}
#: Audit actions the undo refuses: what they did is a security control, not something removed.
REFUSED = {"create-flow-log"}
#: Security Hub's limit on a note's text (BatchUpdateFindings ``Note.Text``).
NOTE_MAX = 512
UNKNOWN_ACTOR = "a Security Hub user"


def parse(event: Any) -> tuple[list[Mapping[str, Any]], str, str]:
    """``(findings, actor, event id)`` of a custom-action event; ``MalformedEvent`` otherwise."""
    if not isinstance(event, Mapping):
        raise MalformedEvent("event is not a JSON object")
    if event.get("source") != "aws.securityhub" or event.get("detail-type") != CUSTOM_ACTION_DETAIL_TYPE:
        raise MalformedEvent(
            f"not a Security Hub custom action: source {event.get('source')!r}, "
            f"detail-type {event.get('detail-type')!r}"
        )
    detail = event.get("detail")
    findings = detail.get("findings") if isinstance(detail, Mapping) else None
    if not isinstance(findings, list) or not all(isinstance(f, Mapping) and f.get("Id") for f in findings):
        raise MalformedEvent("detail.findings must be a list of findings, each with an Id")
    who = detail.get("userIdentity") if isinstance(detail, Mapping) else None
    actor = UNKNOWN_ACTOR
    if isinstance(who, Mapping):
        actor = str(who.get("arn") or who.get("principalId") or UNKNOWN_ACTOR)
    return list(findings), actor, str(event.get("id") or "")


def handle(event: Any, rt: Any, context: Any = None) -> dict[str, Any]:
    """UndoFunction: undo the remediation behind every finding the event carries."""
    findings, actor, event_id = parse(event)
    logger.info("undo requested", extra={"findings": [f["Id"] for f in findings], "actor": actor})
    results = [undo_finding(rt, f, actor=actor) for f in findings]
    return {"status": "done", "event_id": event_id, "actor": actor, "results": results}


def audit_id_of(finding: Mapping[str, Any]) -> str | None:
    fields = finding.get("ProductFields") or {}
    value = fields.get("perimeter/audit_id") if isinstance(fields, Mapping) else None
    return str(value) if value else None


def undo_finding(
    rt: Any, finding: Mapping[str, Any], *, actor: str, today: dt.date | None = None
) -> dict[str, Any]:
    """Undo the remediation one finding reports, exempt it, note the finding."""
    fid = str(finding["Id"])
    ident = {"Id": fid, "ProductArn": str(finding.get("ProductArn", ""))}
    audit_id = audit_id_of(finding)
    if not fid.startswith("perimeter/"):
        return {"finding_id": fid, "status": "not-perimeter", "reason": "not a Perimeter finding"}
    gone: list[str] = []

    def tell(text: str, workflow: str | None) -> None:
        # a finding Security Hub no longer holds (deleted, or an event naming one it never
        # had) cannot be noted, and a retry would not change that: said in the result and
        # the log, not raised
        gone.extend(rt.securityhub.note_findings([ident], note=text[:NOTE_MAX], by=actor, workflow=workflow))

    if not audit_id:
        tell("Perimeter: nothing to undo (no remediation is recorded on this finding).", None)
        out = {"finding_id": fid, "status": "nothing-to-undo", "reason": "the finding names no remediation"}
        return _with_gone(out, gone)

    def note(done: Mapping[str, Any]) -> None:
        tell(
            f"Undone by {actor} until {done['exempt_until']} (Perimeter restored "
            f"{done['what']}; exempt until then, enforced again after).",
            "SUPPRESSED",
        )

    result = undo_audit(rt, audit_id, actor=actor, finding_id=fid, today=today, note=note)
    if result["status"] == "refused":
        # the reviewer pressed the button in Security Hub: the answer belongs there too
        tell(f"Perimeter: not undone. {result['reason']}", None)
    return _with_gone({"finding_id": fid, **result}, gone)


def _with_gone(out: dict[str, Any], gone: list[str]) -> dict[str, Any]:
    if gone:
        logger.warning("finding not in Security Hub: not noted", extra={"finding_id": out["finding_id"]})
        out["note"] = "not noted: Security Hub does not hold the finding"
    return out


def undo_audit(
    rt: Any,
    audit_id: str,
    *,
    actor: str,
    finding_id: str | None = None,
    today: dt.date | None = None,
    days: int | None = None,
    note: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Restore what one audit record lists and exempt it for ``days`` (default: the
    function's ``PERIMETER_EXEMPT_DAYS``). A record already undone is a no-op.

    The record is marked restored last, after ``note`` (the finding's note): a failure before
    that leaves it unmarked, so Lambda's retry does every step again (each tolerates having
    been done) and the note is never lost."""
    from perimeter.restore import restore

    record = rt.audit.get(audit_id)
    if record is None:
        return {"audit_id": audit_id, "status": "no-audit-record"}
    done = rt.audit.restored(audit_id)
    if done is not None:
        logger.info("already undone", extra={"audit_id": audit_id, **done})
        return {"audit_id": audit_id, "status": "already-undone", **done}
    action = str(record.get("action"))
    if action in REFUSED:
        return {"audit_id": audit_id, "status": "refused", "reason": refusal(record)}
    if action not in UNDOABLE:
        return {
            "audit_id": audit_id,
            "status": "not-undoable-here",
            "reason": (
                f"{action}: restore it with `perimeter restore {audit_id}` after exempting it in the policy"
            ),
        }
    now = iso_now()
    day = today or dt.datetime.now(dt.UTC).date()
    until = day + dt.timedelta(days=days if days is not None else rt.settings.exempt_days)
    if rt.exemptions is None:
        raise RuntimeError(
            "PERIMETER_EXEMPTIONS_TABLE is not set: an undo without its exemption is revoked again"
        )
    if action == "delete-security-group":
        # The group comes back under a new id, known only once it exists: its exemption
        # (PER-REV-1, which only the sweep enforces, never an event) follows the restore. A
        # retry finds the group by name and writes the same items again.
        restored = restore(rt, record)
        if "group_id" not in restored:  # the record says the delete never happened
            return {"audit_id": audit_id, "status": "nothing-to-undo", "reason": restored.get("reason")}
        new_id = str(restored["group_id"])
        items = undo_items(
            resource_id=new_id,
            controls=("PER-REV-1",),
            reason=f"undo of {audit_id}",
            until=until,
            actor=actor,
            audit_id=audit_id,
            finding_id=finding_id,
            now=now,
        )
        rt.exemptions.put(items)
        rules = len(record.get("rules") or [])
        what = (
            f"the deleted group {record['group_id']} ({(record.get('group') or {}).get('name')}) "
            f"as {new_id}, with its {rules} rule(s) and tags"
        )
    else:
        items, what = _exemption(
            record, until=until, actor=actor, audit_id=audit_id, finding_id=finding_id, now=now
        )
        rt.exemptions.put(items)  # first: the restore is judged as soon as CloudTrail delivers it
        restored = restore(rt, record)
    out = {
        "audit_id": audit_id,
        "status": "undone",
        "exempt_until": until.isoformat(),
        "what": what,
        "exemptions": len(items),
        "restored": restored,
    }
    if note is not None:
        note(out)
    first = rt.audit.mark_restored(audit_id, by=actor, at=now, exempt_until=until.isoformat())
    logger.info("undone", extra={"audit_id": audit_id, "until": until.isoformat(), "first": first})
    return out if first else {**out, "status": "already-undone"}


def _exemption(
    record: Mapping[str, Any], *, until: dt.date, actor: str, audit_id: str, finding_id: str | None, now: str
) -> tuple[list[dict[str, Any]], str]:
    common = dict(until=until, actor=actor, audit_id=audit_id, finding_id=finding_id, now=now)
    reason = f"undo of {audit_id}"
    if record.get("action") == "revoke-security-group-rules":
        gid = str(record["group_id"])
        rules = [Rule.from_dict({**r, "group_id": gid}) for r in record.get("rules", [])]
        controls = record.get("controls") or ["PER-SG-1", "PER-SG-2", "PER-SG-3", "PER-SG-4"]
        items = undo_items(resource_id=gid, controls=controls, rules=rules, reason=reason, **common)  # type: ignore[arg-type]
        return items, f"{len(rules)} rule(s) of {gid}: " + "; ".join(r.describe() for r in rules)
    gid = str(record["default_group_id"])
    items = undo_items(resource_id=gid, controls=("PER-DSG-1", "PER-DSG-2"), reason=reason, **common)  # type: ignore[arg-type]
    enis = sorted(record.get("enis", {}))
    return items, f"the default group {gid} of {record.get('vpc_id')}: its rules and {len(enis)} ENI(s)"


def refusal(record: Mapping[str, Any]) -> str:
    """Why the undo leaves a created flow log alone, and what to do instead."""
    vpc = record.get("vpc_id")
    ids = ", ".join(record.get("flow_log_ids") or []) or "the flow log it created"
    return (
        f"Perimeter created {ids} on {vpc} (PER-FL-1): a flow log removes nothing and undoing it "
        f"would remove a security control. To stop Perimeter recreating it, exempt the VPC: tag "
        f"{vpc} with perimeter:exempt = 'PER-FL-1 until=YYYY-MM-DD reason=<why>' (or a policy "
        f"exemption); then, if it must go, `perimeter restore {record.get('audit_id')}` deletes "
        f"exactly that flow log."
    )


def find_finding(hub: Any, finding_id: str) -> dict[str, Any] | None:
    """The stored finding with this Id (the CLI's ``perimeter restore FINDING_ID``)."""
    from perimeter.adapters.securityhub import SecurityHubAdapter

    return SecurityHubAdapter(hub).existing([finding_id]).get(finding_id)
