"""Dry run, counted (issue 11, item 6): with the template's ``DryRun=true``, no handler makes a
write call to EC2, SageMaker, Bedrock, IAM or CloudWatch Logs, on any sample event or on any
scene that would otherwise act; and the findings say that dry run is why nothing was done.

Writes are counted at the botocore level (every call the functions' clients make, classified by
operation name: anything but Describe*/Get*/List* and the other reads is a write), not assumed
from the handlers' summaries. The scheduled sweep is not on this branch yet: its dry-run check
belongs with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from perimeter_local.invoke import route

from tests.safety.scenes import SCENES
from tests.safety.world import RESOURCE_SERVICES, ROOT, World

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


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_event_makes_no_write_in_dry_run(dry: World, path: Path) -> None:
    event = json.loads(path.read_text())
    targets = [spec.logical_id for spec, _ in route(list(dry.specs.values()), event)]
    for function_id in targets:
        out = dry.invoke_once(function_id, event)
        assert not resource_writes(out.calls), f"{path.name} -> {function_id}: {resource_writes(out.calls)}"


@pytest.mark.parametrize("name", sorted(SCENES))
def test_scene_that_would_act_makes_no_write_and_says_dry_run(dry: World, name: str) -> None:
    scene = SCENES[name]
    event = scene.setup(dry)
    before = {
        "rules": dry.client("ec2").describe_security_group_rules()["SecurityGroupRules"],
        "flow_logs": dry.client("ec2").describe_flow_logs()["FlowLogs"],
    }
    out = dry.invoke_once(scene.function_id, event)
    assert out.ok, out.error
    assert not resource_writes(out.calls), resource_writes(out.calls)
    assert not [c for c in out.calls if c.startswith("ec2.Create") or c.startswith("ec2.Revoke")]
    # AWS read back: nothing moved, nothing revoked, nothing created
    assert len(dry.client("ec2").describe_security_group_rules()["SecurityGroupRules"]) == len(
        before["rules"]
    )
    assert dry.client("ec2").describe_flow_logs()["FlowLogs"] == before["flow_logs"]
    assert dry.audit() == [], "an audit record of a change that was not made"
    findings = dry.findings()
    assert findings, "dry run still reports"
    for f in findings:
        text = json.dumps([f.get("Description"), f.get("ProductFields", {})]).lower()
        assert f["Compliance"]["Status"] == "FAILED", f["Id"]
        assert "dry run" in text, f"{f['Id']} does not say dry run: {f.get('Description')}"
