"""The exemption sources besides the policy file (pure): the ``perimeter:exempt`` tag's format, the
undo's DynamoDB items, and ``Policy.exemption_for`` applying all three in one place."""

from __future__ import annotations

import datetime as dt

import pytest
from perimeter.core.exemptions import (
    TAG_KEY,
    expiring,
    expiry_epoch,
    from_item,
    from_tags,
    parse_tag,
    tag_problem,
    undo_items,
)
from perimeter.core.rules import Rule
from perimeter.policy import Exemption, load_default_policy

TODAY = dt.date(2026, 11, 29)


@pytest.mark.parametrize(
    ("value", "controls", "until", "reason"),
    [
        ("PER-SG-1 until=2026-12-31 reason=partner SFTP", {"PER-SG-1"}, "2026-12-31", "partner SFTP"),
        (
            "PER-SG-1+PER-DSG-2 until=2027-01-01 reason=a/b:c@d.e_f=g",
            {"PER-SG-1", "PER-DSG-2"},
            "2027-01-01",
            None,
        ),
        ("all until=2026-11-30 reason=load test", None, "2026-11-30", "load test"),
    ],
)
def test_a_well_formed_tag(value: str, controls: set[str] | None, until: str, reason: str | None) -> None:
    ex = parse_tag(value, TODAY)
    assert isinstance(ex, Exemption)
    assert ex.controls == (frozenset(controls) if controls else None)
    assert ex.expires == dt.date.fromisoformat(until) and ex.source == "tag"
    if reason:
        assert ex.reason == reason


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("PER-SG-1,PER-SG-2 until=2026-12-31 reason=x", "characters"),
        ("PER-SG-1;until=2026-12-31;reason=x", "characters"),
        ("PER-SG-1 until=2026-12-31 reason=é", "characters"),
        ("PER-SG-1 until=2026-12-31", "expected"),
        ("until=2026-12-31 reason=x", "expected"),
        ("PER-SG-1 until=2026-12-31 reason=   ", "expected"),
        ("PER-XX-1 until=2026-12-31 reason=x", "unknown control"),
        ("PER-EXM-1 until=2026-12-31 reason=x", "unknown control"),
        ("PER-SG-1 until=2026-02-30 reason=x", "not a date"),
        ("PER-SG-1 until=2028-01-01 reason=x", "more than 366 days"),
        ("PER-SG-1 until=2026-12-31 reason=" + "x" * 250, "256"),
    ],
)
def test_a_malformed_tag_names_its_problem_and_protects_nothing(value: str, problem: str) -> None:
    parsed = parse_tag(value, TODAY)
    assert isinstance(parsed, str) and problem in parsed
    tags = {TAG_KEY: value}
    assert from_tags(tags, TODAY) is None
    found = tag_problem("sg-1", tags, TODAY)
    assert found is not None and found.value == value
    assert load_default_policy().exemption_for("PER-SG-1", group_id="sg-1", tags=tags, today=TODAY) is None


def test_the_tag_applies_to_its_controls_until_its_last_day() -> None:
    policy = load_default_policy()
    tags = {TAG_KEY: "PER-SG-1 until=2026-12-31 reason=x"}
    on = policy.exemption_for("PER-SG-1", group_id="sg-1", tags=tags, today=dt.date(2026, 12, 31))
    assert on is not None and on.label == "tag perimeter:exempt until 2026-12-31: x"
    assert policy.exemption_for("PER-SG-2", group_id="sg-1", tags=tags, today=TODAY) is None
    assert policy.exemption_for("PER-SG-1", group_id="sg-1", tags=tags, today=dt.date(2027, 1, 1)) is None


def test_undo_items_round_trip_and_apply_to_the_rule_alone() -> None:
    rule = Rule("sg-1", False, "tcp", 22, 22, cidr="0.0.0.0/0")
    other = Rule("sg-1", False, "tcp", 3389, 3389, cidr="0.0.0.0/0")
    items = undo_items(
        resource_id="sg-1",
        controls=["PER-SG-2", "PER-SG-1"],
        rules=[rule],
        until=dt.date(2026, 12, 6),
        actor="arn:aws:sts::1:assumed-role/SecOps/rita",
        reason="undo of e#sg-1",
        audit_id="e#sg-1",
        finding_id="perimeter/PER-SG-1/1/us-east-1/sg-1",
        now="2026-11-29T00:00:00Z",
    )
    assert [i["sk"]["S"].split("#")[0] for i in items] == ["PER-SG-1", "PER-SG-2"]
    assert int(items[0]["expires_at"]["N"]) == expiry_epoch(dt.date(2026, 12, 6))
    exs = [from_item(i) for i in items]
    policy = load_default_policy()
    on = policy.exemption_for("PER-SG-1", group_id="sg-1", extra=exs, rule_key=rule.key, today=TODAY)
    assert on is not None and on.source == "undo" and "rita" in on.label
    assert (
        policy.exemption_for("PER-SG-1", group_id="sg-1", extra=exs, rule_key=other.key, today=TODAY) is None
    )
    assert (
        policy.exemption_for("PER-SG-1", group_id="sg-2", extra=exs, rule_key=rule.key, today=TODAY) is None
    )
    late = dt.date(2026, 12, 7)
    assert policy.exemption_for("PER-SG-1", group_id="sg-1", extra=exs, rule_key=rule.key, today=late) is None


def test_expiring_within_a_week() -> None:
    exs = [Exemption(reason=str(d), expires=TODAY + dt.timedelta(days=d)) for d in (-1, 0, 3, 7, 8)]
    assert [e.reason for e in expiring(exs, TODAY)] == ["0", "3", "7"]
