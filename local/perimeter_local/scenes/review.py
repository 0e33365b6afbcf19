"""Demo scene: the sweep, the review no event can do (practice 8, issue 8).

Four things happen that no handler acts on: a person fixes a detect-only finding by hand; a
world-open RDP rule is opened while nothing listened (say, before the stack was deployed); a
group nobody uses any more has been sitting there since an earlier sweep first saw it 45 days
ago; a group with an open finding is deleted. The fixing calls are sent through the template's
rules as CloudTrail would send them: where a rule routes them, the finding resolves on its
event; where none does, the sweep resolves it. Then SweepFunction runs once, as its schedule
would run it, and Security Hub is read back.
"""

from __future__ import annotations

from typing import Any

from perimeter.core.events import wrap_in_envelope

from perimeter_local.cli import scheduled_event
from perimeter_local.cloudtrail import authorize_event, record
from perimeter_local.invoke import invoke
from perimeter_local.review_seed import remember_unused

TITLE = "The sweep: what no event reported, fixed by hand, unused or gone (PER-REV-1/2, practice 8)"
WORLD_RDP = {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
ONE_HOST_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.9/32"}]}


def _finding(demo: Any, control: str, resource: str) -> dict[str, Any] | None:
    fid = f"perimeter/{control}/{demo.account}/{demo.region}/{resource}"
    for page in demo.session.client("securityhub").get_paginator("get_findings").paginate():
        for f in page["Findings"]:
            if f["Id"] == fid:
                return dict(f)
    return None


def _state(f: dict[str, Any] | None) -> str:
    return f"{f['Compliance']['Status']}/{f['RecordState']}" if f else "no finding"


def _rules(ec2: Any, gid: str) -> list[dict[str, Any]]:
    return list(
        ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])[
            "SecurityGroupRules"
        ]
    )


def _event(demo: Any, name: str, request: dict[str, Any]) -> dict[str, Any]:
    return wrap_in_envelope(
        record(
            name, "ec2.amazonaws.com", request, {"_return": True}, account=demo.account, region=demo.region
        )
    )


def play(demo: Any) -> None:
    ec2 = demo.session.client("ec2")
    d = demo.deployment
    model_sg, app_sg, vpc = d["model_sg_id"], d["app_sg_id"], d["vpc_id"]

    # 1. A detect-only finding, fixed by hand.
    demo.say(
        f"PER-SG-4 on {model_sg} (allow-all egress, detect only): "
        + _state(_finding(demo, "PER-SG-4", model_sg))
    )
    egress = [r for r in _rules(ec2, model_sg) if r["IsEgress"] and r["IpProtocol"] == "-1"]
    ec2.authorize_security_group_egress(
        GroupId=model_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}
        ],
    )
    ids = [r["SecurityGroupRuleId"] for r in egress]
    ec2.revoke_security_group_egress(GroupId=model_sg, SecurityGroupRuleIds=ids)
    demo.route(
        _event(
            demo, "RevokeSecurityGroupEgress", {"groupId": model_sg, "securityGroupRuleIds": {"items": ids}}
        ),
        "A person replaces the model tier's allow-all egress with HTTPS inside the VPC",
    )
    on_event = _finding(demo, "PER-SG-4", model_sg)
    demo.say(f"  PER-SG-4 on {model_sg} after the fix's event: {_state(on_event)}")

    # 2. A world-open rule made while nothing listened: no event at all.
    ec2.authorize_security_group_ingress(GroupId=app_sg, IpPermissions=[WORLD_RDP])
    demo.say(f"\nRDP opened to the world on {app_sg} while nothing listened (no event reaches Perimeter).")

    # 3. An unused group, first seen unused by an earlier sweep 45 days ago.
    bastion = ec2.create_security_group(
        GroupName="legacy-bastion", Description="bastion retired last quarter", VpcId=vpc
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=bastion, IpPermissions=[ONE_HOST_SSH])
    remember_unused(demo.session, demo.resolver, bastion, 45)
    demo.say(
        f"Group {bastion} (legacy-bastion): nothing uses it; "
        "an earlier sweep first saw it unused 45 days ago."
    )

    # 4. A group with an open finding is deleted.
    scratch = ec2.create_security_group(GroupName="scratch", Description="scratch", VpcId=vpc)["GroupId"]
    before = {r["SecurityGroupRuleId"] for r in _rules(ec2, scratch)}
    ec2.authorize_security_group_ingress(GroupId=scratch, IpPermissions=[ONE_HOST_SSH])
    created = [r for r in _rules(ec2, scratch) if r["SecurityGroupRuleId"] not in before]
    demo.route(
        authorize_event(
            account=demo.account,
            region=demo.region,
            group_id=scratch,
            permissions=[ONE_HOST_SSH],
            created_rules=created,
        ),
        "SSH from one outside host on a scratch group (scores LOW: reported, not revoked)",
    )
    demo.say(f"  PER-SG-2 on {scratch}: {_state(_finding(demo, 'PER-SG-2', scratch))}")
    ec2.delete_security_group(GroupId=scratch)
    demo.route(_event(demo, "DeleteSecurityGroup", {"groupId": scratch}), f"A person deletes {scratch}")

    # The sweep, as its schedule runs it.
    spec = next(s for s in demo.specs if s.schedules)
    demo.say(f"\n> {spec.logical_id} on its schedule ({', '.join(spec.schedules)})")
    res = invoke(
        spec,
        scheduled_event(demo.account, demo.region, "perimeter-sweep"),
        account=demo.account,
        region=demo.region,
        log_stream=demo.log,
    )
    demo.routed.append({"label": "scheduled sweep", "event_id": None, "results": [res]})
    if not res["ok"]:
        demo.say(f"  FAILED {res['error']}")
        demo.check(False, "the sweep ran")
        return
    out = res["result"]
    c = out["counts"]
    demo.say(
        f"  {spec.logical_id} ({res['ms']} ms): {c['security_groups']} groups, "
        f"{c['network_interfaces']} ENIs, {c['vpcs']} VPCs judged; {c['rules_revoked']} rule(s) revoked; "
        f"{c['findings_resolved']} finding(s) resolved"
    )
    for line in out["lines"]:
        demo.say_wrapped(line, "    ")
    for fid in out["resolved"]:
        demo.say(f"    resolved  {fid}")

    fixed = _finding(demo, "PER-SG-4", model_sg)
    how = (
        "on its event"
        if _state(on_event) == "PASSED/ARCHIVED"
        else "by the sweep (no rule routes the fix here)"
    )
    demo.check(_state(fixed) == "PASSED/ARCHIVED", f"the finding fixed by hand is resolved, {how}")
    demo.check(
        not any(r.get("FromPort") == 3389 and not r["IsEgress"] for r in _rules(ec2, app_sg)),
        "the world-open RDP rule nobody reported is revoked by the sweep",
    )
    demo.check(
        _state(_finding(demo, "PER-SG-1", app_sg)) == "PASSED/ARCHIVED",
        "its finding says so (PASSED/ARCHIVED)",
    )
    demo.check(
        _state(_finding(demo, "PER-REV-1", bastion)) == "FAILED/ACTIVE",
        f"the unused group {bastion} is reported (PER-REV-1, detect: kept)",
    )
    gone = _finding(demo, "PER-SG-2", scratch)
    demo.check(
        _state(gone) == "PASSED/ARCHIVED" and "no longer exists" in str((gone or {}).get("Description")),
        f"the deleted group's finding is archived ({scratch})",
    )
