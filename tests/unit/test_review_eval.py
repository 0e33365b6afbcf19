"""The sweep's own decisions (pure): unused groups, first sightings, stale rules, what to resolve."""

from __future__ import annotations

from typing import Any

from perimeter.policy import load_default_policy
from perimeter.review.evaluate import (
    covered,
    dangling_rules,
    keep_first_sighting,
    resolved,
    review_unused,
    to_resolve,
    unused_groups,
)

ACCOUNT = "123456789012"


def group(gid: str, name: str = "g", refs: tuple[str, ...] = (), owner: str = ACCOUNT) -> dict[str, Any]:
    return {
        "GroupId": gid,
        "GroupName": name,
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": r, "UserId": owner} for r in refs],
            }
        ],
        "IpPermissionsEgress": [],
    }


def test_a_group_is_used_by_an_eni_a_rule_of_another_group_or_anything_named() -> None:
    groups = [
        group("sg-eni"),
        group("sg-ref"),
        group("sg-lt"),
        group("sg-self", refs=("sg-self",)),
        group("sg-src", refs=("sg-ref",)),
        group("sg-default", name="default"),
    ]
    unused = unused_groups(groups, ["sg-eni"], also_used=["sg-lt"])
    # sg-src names sg-ref but nothing names sg-src; a self-reference does not count as use.
    assert unused == ["sg-self", "sg-src"]


def test_first_sightings_are_kept_and_only_groups_past_the_grace_period_are_overdue() -> None:
    state = {"sg-old": "2026-01-01T00:00:00.000Z", "sg-back": "2026-01-01T00:00:00.000Z"}
    review = review_unused(["sg-old", "sg-new"], state, now="2026-01-31T00:00:00.000Z", grace_days=30)
    assert review.first_seen == {"sg-new": "2026-01-31T00:00:00.000Z"}
    assert review.cleared == ("sg-back",)
    assert review.overdue == (("sg-old", "2026-01-01T00:00:00.000Z"),)
    short = review_unused(["sg-old"], state, now="2026-01-30T23:59:59.000Z", grace_days=30)
    assert short.overdue == ()
    assert review_unused(["sg-new"], {}, now="2026-01-31T00:00:00.000Z", grace_days=0).overdue == (
        ("sg-new", "2026-01-31T00:00:00.000Z"),
    )


def test_a_rule_naming_a_group_the_region_lacks_is_stale_unless_another_account_owns_it() -> None:
    groups = [
        group("sg-a", refs=("sg-gone", "sg-b")),
        group("sg-b"),
        group("sg-x", refs=("sg-theirs",), owner="999"),
    ]
    stale = dangling_rules(groups, account=ACCOUNT)
    assert list(stale) == ["sg-a"]
    (rule,) = stale["sg-a"]
    assert rule.referenced_group_id == "sg-gone" and rule.from_port == 5432 and rule.egress is False


def _finding(control: str, short: str, state: str = "ACTIVE") -> dict[str, Any]:
    return {
        "Id": f"perimeter/{control}/{ACCOUNT}/us-east-1/{short}",
        "GeneratorId": control,
        "AwsAccountId": ACCOUNT,
        "RecordState": state,
        "FirstObservedAt": "2026-01-01T00:00:00.000Z",
        "CreatedAt": "2026-01-01T00:00:00.000Z",
        "UpdatedAt": "2026-01-02T00:00:00.000Z",
        "ProductFields": {"perimeter/control": control, "aws/securityhub/ProductName": "Default"},
    }


def test_only_active_findings_in_the_sweeps_scope_that_it_did_not_raise_are_resolved() -> None:
    scope = covered(load_default_policy())
    existing = [
        _finding("PER-SG-1", "sg-fixed"),
        _finding("PER-SG-1", "sg-still"),
        _finding("PER-SG-1", "sg-archived", "ARCHIVED"),
        _finding("PER-IAM-1", "role/r"),  # every role, user and managed policy is judged
        _finding("PER-VPC-1", "marketplace-endpoint/e"),  # every Marketplace endpoint too
        _finding("PER-GR-1", "guardrail/g"),  # guardrails are not: left to their events
        _finding("PER-TIER-1", "sg-shared"),  # nor PER-TIER-1
        _finding("PER-VPC-1", "model/m"),
        _finding("PER-FL-1", "vpc-1"),
        {**_finding("PER-SG-1", "sg-other-region"), "Id": f"perimeter/PER-SG-1/{ACCOUNT}/eu-west-1/sg-x"},
    ]
    raised = [f"perimeter/PER-SG-1/{ACCOUNT}/us-east-1/sg-still"]
    out = [
        f["Id"].rsplit("/", 1)[-1]
        for f in to_resolve(existing, raised, scope, account=ACCOUNT, region="us-east-1")
    ]
    assert out == ["sg-fixed", "r", "e", "m", "vpc-1"]


def test_a_resolved_finding_keeps_its_first_sighting_and_drops_security_hubs_own_fields() -> None:
    f = resolved(_finding("PER-SG-1", "sg-1"), now="2026-02-01T00:00:00.000Z", why="gone", sweep_id="sweep-1")
    assert (f["Compliance"]["Status"], f["RecordState"], f["Workflow"]["Status"]) == (
        "PASSED",
        "ARCHIVED",
        "RESOLVED",
    )
    assert f["FirstObservedAt"] == "2026-01-01T00:00:00.000Z" and f["UpdatedAt"] == "2026-02-01T00:00:00.000Z"
    assert not [k for k in f["ProductFields"] if k.startswith("aws/")]
    kept = keep_first_sighting(
        {
            **_finding("PER-SG-1", "sg-1"),
            "FirstObservedAt": "2026-03-01T00:00:00.000Z",
            "CreatedAt": "2026-03-01T00:00:00.000Z",
            "UpdatedAt": "2026-03-01T00:00:00.000Z",
        },
        _finding("PER-SG-1", "sg-1"),
    )
    assert kept["FirstObservedAt"] == kept["CreatedAt"] == "2026-01-01T00:00:00.000Z"
