"""Dry run, counted (issue 11, item 6): with the template's ``DryRun=true``, no handler makes a
write call to EC2, SageMaker, Bedrock, IAM or CloudWatch Logs, on any sample event or on any
scene that would otherwise act; and the findings say that dry run is why nothing was done.

Writes are counted at the botocore level (every call the functions' clients make, classified by
operation name: anything but Describe*/Get*/List* and the other reads is a write), not assumed
from the handlers' summaries. The scheduled sweep is held to the same: over an account where
every scene's violation is present (and an unused group, for the review controls), it makes no
such write in dry run, and the same sweep with the switch off does act (so the count has teeth).
"""

from __future__ import annotations

import json

import pytest
from perimeter_local.invoke import route

from tests.safety.scenes import SCENES, group, vpc
from tests.safety.world import ACCOUNT, REGION, RESOURCE_SERVICES, ROOT, World, deployed

SAMPLES = sorted((ROOT / "events").glob("*.json"))


def resource_writes(calls: list[str]) -> list[str]:
    from tests.safety.world import is_write

    return [c for c in calls if is_write(c) and c.split(".")[0] in RESOURCE_SERVICES]


@pytest.fixture
def dry(make_world) -> World:  # type: ignore[no-untyped-def]
    return make_world(dry_run=True)  # type: ignore[no-any-return]


def test_the_switch_reaches_every_function(dry: World) -> None:
    for function_id, spec in dry.specs.items():
        assert spec.environment["PERIMETER_DRY_RUN"] == "true", function_id


def test_every_sample_event_makes_no_write_in_dry_run(dry: World) -> None:
    """Every sample, to every function the template's rules send it to (one account: a
    sample that wrote would show in the calls, whatever came before it)."""
    reached = 0
    for path in SAMPLES:
        event = json.loads(path.read_text())
        for spec, _ in route(list(dry.specs.values()), event):
            reached += 1
            out = dry.invoke_once(spec.logical_id, event)
            writes = resource_writes(out.calls)
            assert not writes, f"{path.name} -> {spec.logical_id}: {writes}"
    assert reached >= len(SAMPLES) // 2, "most samples must reach a function"


def test_scenes_that_would_act_make_no_write_and_say_dry_run(dry: World) -> None:
    for name in sorted(SCENES):
        scene = SCENES[name]
        event = scene.setup(dry)
        rules_before = dry.client("ec2").describe_security_group_rules()["SecurityGroupRules"]
        logs_before = dry.client("ec2").describe_flow_logs()["FlowLogs"]
        seen = {f["Id"] for f in dry.findings()}
        out = dry.invoke_once(scene.function_id, event)
        assert out.ok, out.error
        assert not resource_writes(out.calls), (name, resource_writes(out.calls))
        # AWS read back: nothing moved, nothing revoked, nothing created
        rules_after = dry.client("ec2").describe_security_group_rules()["SecurityGroupRules"]
        assert len(rules_after) == len(rules_before), name
        assert dry.client("ec2").describe_flow_logs()["FlowLogs"] == logs_before, name
        assert dry.audit() == [], "an audit record of a change that was not made"
        findings = [f for f in dry.findings() if f["Id"] not in seen]
        assert findings, f"{name}: dry run still reports"
        for f in findings:
            text = json.dumps([f.get("Description"), f.get("ProductFields", {})]).lower()
            assert f["Compliance"]["Status"] == "FAILED", f["Id"]
            assert "dry run" in text, f"{f['Id']} does not say dry run: {f.get('Description')}"


SCHEDULED = {
    "version": "0",
    "id": "0d8a7c3e-5b7e-4f6a-9a3b-2f1e0c9d8b7a",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2026-11-29T00:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/perimeter-sweep"],
    "detail": {},
}


def _sweep_over_every_scene(*, dry_run: bool) -> tuple[list[str], list[dict[str, object]], dict[str, object]]:
    """Every scene's violation left in place (its event never delivered), plus a group nothing
    uses; then the sweep once: (its resource writes, the findings it raised, its summary)."""
    with deployed(dry_run=dry_run) as w:
        for name in sorted(SCENES):
            SCENES[name].setup(w)
        group(w, vpc(w, "10.8.0.0/16"), "unused-app", tier="app")
        assert "SweepFunction" in w.specs, "the template's sweep"
        assert w.specs["SweepFunction"].environment["PERIMETER_DRY_RUN"] == str(dry_run).lower()
        out = w.invoke_once("SweepFunction", SCHEDULED)
        assert out.ok, out.error
        return resource_writes(out.calls), w.findings(), out.result


def test_the_sweep_makes_no_write_in_dry_run_and_says_so() -> None:
    acting, _, _ = _sweep_over_every_scene(dry_run=False)
    # the same account without dry run: the sweep revokes, moves ENIs, creates flow logs
    assert {"ec2.RevokeSecurityGroupIngress", "ec2.CreateFlowLogs"} <= set(acting), acting
    writes, findings, summary = _sweep_over_every_scene(dry_run=True)
    assert writes == [], writes
    assert summary["status"] == "swept", summary
    failed = [f for f in findings if f["Compliance"]["Status"] == "FAILED"]
    assert failed, "dry run still reports"
    for f in failed:
        text = json.dumps([f.get("Description"), f.get("ProductFields", {})]).lower()
        assert "dry run" in text, f"{f['Id']} does not say dry run: {f.get('Description')}"
