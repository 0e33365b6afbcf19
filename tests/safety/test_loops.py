"""Loops and order (issue 11, item 5).

- The same event delivered five times (EventBridge delivers at least once; Lambda retries) ends
  in the state one delivery gives: one remediation, one finding update, one notification.
- Every write Perimeter makes comes back through CloudTrail as an event whose actor is one of
  its own roles; the template's rules drop each of them (no function is invoked), and were one
  delivered anyway (a rule without the actor clause), the handler starts no work. Its Security
  Hub imports match no rule at all.
- Events out of order end right: a revoke delivered before its authorize, an authorize for a
  group deleted since, two authorizes delivered in reverse order.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from perimeter.core.events import MalformedEvent
from perimeter_local.cloudtrail import user_identity
from perimeter_local.invoke import route
from perimeter_local.replay_route import without_own_role_clause
from perimeter_local.template import FunctionSpec

from tests.safety.scenes import (
    SCENES,
    authorize,
    group,
    profile,
    reference,
    rule_names,
    snapshot,
    tcp,
    vpc,
)
from tests.safety.world import ACCOUNT, FUNCTION_IDS, RESOURCE_SERVICES, World, deployed, is_write


def resource_writes(calls: list[str]) -> list[str]:
    return [c for c in calls if is_write(c) and c.split(".")[0] in RESOURCE_SERVICES]


@pytest.mark.parametrize("name", profile(sorted(SCENES), {"default-sg-migration"}))
def test_same_event_five_times_acts_once(name: str) -> None:
    scene = SCENES[name]
    want, ref_calls = reference(scene)
    with deployed() as w:
        event = scene.setup(w)
        names = rule_names(w)
        calls: list[str] = []
        for _ in range(5):
            out = w.deliver(scene.function_id, event)
            assert out.ok and out.attempts == 1, out.error
            calls += out.calls
        assert snapshot(w, rule_names=names) == want
        assert resource_writes(calls) == resource_writes(ref_calls)
        assert calls.count("securityhub.BatchImportFindings") == 1
        assert calls.count("sns.Publish") == 1


@pytest.mark.long
def test_five_copies_with_distinct_delivery_ids_act_once() -> None:
    """EventBridge's own envelope id differs between deliveries of one CloudTrail record; the
    CloudTrail eventID does not, and is the key."""
    scene = SCENES["sg-world-ssh"]
    want, _ = reference(scene)
    with deployed() as w:
        event = scene.setup(w)
        names = rule_names(w)
        for i in range(5):
            copy_ = copy.deepcopy(event)
            copy_["id"] = f"delivery-{i}"
            assert w.deliver(scene.function_id, copy_).ok
        assert snapshot(w, rule_names=names) == want


# --- Perimeter's own calls come back -----------------------------------------------------------

SOURCES = {
    "ec2": "ec2.amazonaws.com",
    "cloudwatch-logs": "logs.amazonaws.com",
    "logs": "logs.amazonaws.com",
    "dynamodb": "dynamodb.amazonaws.com",
    "securityhub": "securityhub.amazonaws.com",
    "sns": "sns.amazonaws.com",
    "sagemaker": "sagemaker.amazonaws.com",
    "iam": "iam.amazonaws.com",
}


def own_echoes(w: World, function_id: str, calls: list[str]) -> list[dict[str, Any]]:
    """The CloudTrail events of the writes a function made, as its role made them."""
    arn = w.own_role_arn(function_id)
    out = []
    for op in dict.fromkeys(c for c in calls if is_write(c)):
        service, name = op.split(".")
        out.append(w.event(name, SOURCES[service], {"groupId": "sg-0123456789abcdef0"}, {}, actor_arn=arn))
    return out


def without_actor_clause(specs: list[FunctionSpec]) -> list[FunctionSpec]:
    return [
        dataclasses.replace(
            s,
            rules=tuple(dataclasses.replace(r, pattern=without_own_role_clause(r.pattern)) for r in s.rules),
        )
        for s in specs
    ]


@pytest.mark.parametrize("name", profile(sorted(SCENES), {"default-sg-migration"}))
def test_perimeters_own_writes_never_start_work(name: str) -> None:
    scene = SCENES[name]
    _, ref_calls = reference(scene)
    with deployed() as w:
        scene.setup(w)
        echoes = own_echoes(w, scene.function_id, ref_calls)
        assert echoes
        routed = 0
        for echo in echoes:
            assert not route(list(w.specs.values()), echo), "a rule routes Perimeter's own call"
            # delivered anyway (the rules without their actor clause): the handlers' guard
            for spec, _ in route(without_actor_clause(list(w.specs.values())), echo):
                routed += 1
                out = w.invoke_once(spec.logical_id, echo)
                assert out.ok, out.error
                assert out.result["status"] == "ignored", out.result
                assert not [c for c in out.calls if is_write(c)], out.calls
            if echo["detail"]["eventSource"] in ("securityhub.amazonaws.com", "dynamodb.amazonaws.com"):
                assert not route(list(w.specs.values()), echo), "Perimeter's reporting is routed"
        if name in ("sg-world-ssh", "default-sg-migration"):
            assert routed, "no echo reached a function: the test would prove nothing"


@pytest.mark.parametrize(
    "function_id", profile(sorted(SCENES[n].function_id for n in SCENES), {"SgGuardFunction"})
)
def test_scene_event_made_by_any_perimeter_role_is_ignored(function_id: str) -> None:
    """The acting events themselves, had one of Perimeter's roles made them."""
    scene = next(s for s in SCENES.values() if s.function_id == function_id)
    with deployed() as w:
        event = scene.setup(w)
        for role_fn in sorted(w.specs):
            echo = copy.deepcopy(event)
            echo["detail"]["userIdentity"] = user_identity(ACCOUNT, w.own_role_arn(role_fn))
            out = w.invoke_once(function_id, echo)
            assert out.ok and out.result["status"] == "ignored", out.result
            assert not [c for c in out.calls if is_write(c)], out.calls


IMPORTED = {
    "version": "0",
    "id": "x",
    "detail-type": "Security Hub Findings - Imported",
    "source": "aws.securityhub",
    "account": ACCOUNT,
    "region": "us-east-1",
    "resources": [],
    "detail": {"findings": [{"ProductName": "Perimeter", "GeneratorId": "PER-SG-1"}]},
}


def test_security_hub_findings_imported_event_matches_no_rule() -> None:
    with deployed() as w:
        assert route(list(w.specs.values()), IMPORTED) == []


def test_security_hub_import_delivered_anyway_starts_no_work() -> None:
    """Were a rule ever to send Perimeter's own Security Hub import to a handler, it is not a
    CloudTrail call: the one clear validation error (the DLQ), and nothing written."""
    with deployed() as w:
        for function_id in FUNCTION_IDS:
            out = w.invoke_once(function_id, IMPORTED)
            assert not [c for c in out.calls if is_write(c)], (function_id, out.calls)
            if not out.ok:
                assert isinstance(out.error, MalformedEvent), (function_id, out.error)
            else:
                assert out.result["status"] in ("ignored", "no-op"), (function_id, out.result)


# --- out of order ------------------------------------------------------------------------------


def test_revoke_delivered_before_its_authorize() -> None:
    """The user opens SSH to the world and closes it again; the events arrive in reverse
    order. Nothing is left to revoke: no write to EC2, no finding left FAILED."""
    with deployed() as w:
        gid = group(w, vpc(w, "10.9.0.0/16"), "model-b")
        opened = authorize(w, gid, [tcp(22)])
        w.client("ec2").revoke_security_group_ingress(GroupId=gid, IpPermissions=[tcp(22)])
        closed = w.event(
            "RevokeSecurityGroupIngress",
            "ec2.amazonaws.com",
            {
                "groupId": gid,
                "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22}]},
            },
            {"_return": True},
        )
        for event in (closed, opened):
            for spec, _ in route(list(w.specs.values()), event):
                out = w.deliver(spec.logical_id, event)
                assert out.ok, out.error
                assert not resource_writes(out.calls), out.calls
        # Findings tell the group's whole state: the model-tier group still holds AWS's default
        # allow-all egress, so PER-SG-4 (detect) rightly stays FAILED; nothing about ingress does.
        ingress = ("PER-SG-1", "PER-SG-2", "PER-SG-3")
        for f in w.findings():
            if f["GeneratorId"] in ingress:
                assert (f["Compliance"]["Status"], f["RecordState"]) != ("FAILED", "ACTIVE"), f
        assert any(f["GeneratorId"] == "PER-SG-4" for f in w.findings()), "the egress finding is there"


def test_authorize_for_a_group_deleted_since() -> None:
    with deployed() as w:
        gid = group(w, vpc(w, "10.9.0.0/16"), "model-c")
        event = authorize(w, gid, [tcp(22)])
        w.client("ec2").delete_security_group(GroupId=gid)
        out = w.deliver("SgGuardFunction", event)
        assert out.ok, out.error
        assert not resource_writes(out.calls), out.calls
        assert w.audit() == []
        for f in w.findings():
            assert (f["Compliance"]["Status"], f["RecordState"]) != ("FAILED", "ACTIVE"), f


@pytest.mark.long
def test_two_authorizes_delivered_in_reverse_order_end_as_in_order() -> None:
    def story(w: World) -> tuple[dict[str, Any], dict[str, Any]]:
        gid = group(w, vpc(w, "10.9.0.0/16"), "model-d")
        first = authorize(w, gid, [tcp(22)], event_id="00000000-0000-4000-8000-000000000001")
        second = authorize(w, gid, [tcp(3389)], event_id="00000000-0000-4000-8000-000000000002")
        return first, second

    ends = []
    for order in ((0, 1), (1, 0)):
        with deployed() as w:
            events = story(w)
            names = rule_names(w)
            for i in order:
                assert w.deliver("SgGuardFunction", events[i]).ok
            got = snapshot(w, rule_names=names)
            assert got["rules"]["sg[vpc[10.9.0.0/16]/model-d]"] == ["out -1  0.0.0.0/0"]
            ends.append(got)
    assert ends[0] == ends[1]
