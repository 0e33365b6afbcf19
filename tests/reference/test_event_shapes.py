"""The EventBridge patterns against the documented CloudTrail event shapes.

For every rule in template.yaml and every eventName it routes, ``events/`` holds at least one
sample that the rule matches (with the project's matcher, ``perimeter_local.patterns``), and
each such sample has the shape AWS documents for an "AWS API Call via CloudTrail" event: the
envelope's source and detail-type, the CloudTrail record fields, and an ``eventSource`` whose
service really has that operation (botocore's model, by endpoint prefix). The README's table of
routed calls lists exactly what the template routes.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from perimeter.core.events import wrap_in_envelope
from perimeter_local.patterns import matches
from perimeter_local.template import Resolver, functions, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "perimeter",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}

#: CloudTrail record contents (CloudTrail User Guide, "CloudTrail record contents").
RECORD_FIELDS = {
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "requestParameters",
    "responseElements",
    "eventID",
    "eventType",
    "recipientAccountId",
}


def _specs() -> list[Any]:
    resolver = Resolver(TEMPLATE, {}, PSEUDO)
    for logical_id in TEMPLATE["Resources"]:
        resolver.physical[logical_id] = {"Ref": f"perimeter-{logical_id}", "Arn": f"arn:x:{logical_id}"}
    return functions(TEMPLATE, resolver, ROOT)


SPECS = _specs()
SAMPLES = {
    p.name: wrap_in_envelope(json.loads(p.read_text())) for p in sorted((ROOT / "events").glob("*.json"))
}

ROUTES = [
    (spec.logical_id, i, name)
    for spec in SPECS
    for i, rule in enumerate(spec.rules)
    for name in rule.pattern.get("detail", {}).get("eventName", [])
]


@cache
def _operations_by_prefix() -> dict[str, set[str]]:
    session = botocore.session.get_session()
    out: dict[str, set[str]] = {}
    for service in session.get_available_services():
        model = session.get_service_model(service)
        # CloudTrail's eventSource is the service's signing name (sagemaker, not api.sagemaker)
        for prefix in {model.endpoint_prefix, model.signing_name, service}:
            out.setdefault(prefix, set()).update(model.operation_names)
    return out


@pytest.mark.parametrize(
    ("function", "rule", "event_name"), ROUTES, ids=[f"{f}-{r}-{n}" for f, r, n in ROUTES]
)
def test_every_routed_call_has_a_matching_documented_sample(
    function: str, rule: int, event_name: str
) -> None:
    pattern = next(s for s in SPECS if s.logical_id == function).rules[rule].pattern
    hits = {
        name: event
        for name, event in SAMPLES.items()
        if isinstance(event.get("detail"), dict)
        and event["detail"].get("eventName") == event_name
        and matches(pattern, event)
    }
    assert hits, f"events/ has no {event_name} sample that {function}'s rule {rule} matches"
    for name, event in hits.items():
        detail = event["detail"]
        assert event["detail-type"] == "AWS API Call via CloudTrail", name
        missing = RECORD_FIELDS - set(detail)
        assert not missing, f"{name}: lacks CloudTrail record fields {sorted(missing)}"
        assert detail["eventType"] == "AwsApiCall", name
        assert re.fullmatch(r"[0-9a-f-]{36}", str(detail["eventID"])), name
        m = re.fullmatch(r"([a-z0-9-]+)\.amazonaws\.com", str(detail["eventSource"]))
        assert m, f"{name}: eventSource {detail['eventSource']!r}"
        assert event["source"] == f"aws.{m.group(1)}", f"{name}: envelope source {event['source']}"
        assert event_name in _operations_by_prefix().get(m.group(1), set()), (
            f"{name}: {m.group(1)} has no operation {event_name} in botocore's models"
        )


def test_the_readme_lists_every_routed_call_and_nothing_else() -> None:
    readme = (ROOT / "README.md").read_text()
    section = re.split(r"\n#{2,3} ", readme.split("### Routed calls", 1)[1], maxsplit=1)[0]
    rows = re.findall(r"^\| ([A-Za-z0-9]+) \| ([a-z0-9-]+) \| ([A-Za-z]+) \| (.+) \|$", section, re.M)
    rows = [r for r in rows if r[0] != "call"]  # the header
    listed = {(call, f"{fn}Function") for call, _src, fn, _controls in rows}
    routed = {(name, function) for function, _rule, name in ROUTES}
    assert listed == routed, {"not in README": sorted(routed - listed), "not routed": sorted(listed - routed)}
    for call, _src, fn, controls in rows:
        assert re.fullmatch(r"PER-[A-Z]+-\d(, PER-[A-Z]+-\d)*", controls), (call, fn, controls)


def test_the_custom_action_sample_has_the_documented_shape_and_reaches_only_the_undo() -> None:
    """Security Hub's "Security Hub Findings - Custom Action" event (EventBridge event formats for
    Security Hub): the envelope, ``resources`` = [the action's ARN], ``detail`` with actionName,
    actionDescription and findings (ASFF, each with the fields BatchImportFindings requires)."""
    [(name, event)] = [(n, e) for n, e in SAMPLES.items() if e.get("source") == "aws.securityhub"]
    assert name == "SecurityHubCustomAction--undo-and-exempt.json"
    assert event["detail-type"] == "Security Hub Findings - Custom Action"
    assert set(event["detail"]) >= {"actionName", "actionDescription", "findings"}
    [arn] = event["resources"]
    assert re.fullmatch(r"arn:aws:securityhub:us-east-1:123456789012:action/custom/[A-Za-z0-9]{1,20}", arn)
    required = (
        botocore.session.get_session()
        .get_service_model("securityhub")
        .shape_for("AwsSecurityFinding")
        .required_members
    )
    for finding in event["detail"]["findings"]:
        assert set(required) <= set(finding), sorted(set(required) - set(finding))
    routed = {spec.logical_id for spec in SPECS for rule in spec.rules if matches(rule.pattern, event)}
    assert routed == {"UndoFunction"}
    action = TEMPLATE["Resources"]["UndoAction"]["Properties"]
    # CreateActionTarget: Name fewer than 20 characters, Id up to 20 alphanumerics.
    assert len(action["Name"]) < 20 and re.fullmatch(r"[A-Za-z0-9]{1,20}", action["Id"])
    assert arn.endswith("/" + action["Id"])
