"""The pure parts of the posture findings' lifecycle: one issue per (control, resource), the
clean pairs of an evaluation, first-seen times kept, a resolved finding built from the stored one."""

from __future__ import annotations

from perimeter.core.events import parse_event
from perimeter.posture.controls import (
    Evaluation,
    Issue,
    arn_resource,
    keep_first_seen,
    merge_issues,
    resolved_finding,
)

ROLE = arn_resource("AwsIamRole", "arn:aws:iam::1:role/r", "role/r")
USER = arn_resource("AwsIamUser", "arn:aws:iam::1:user/u", "user/u")


def _issue(summary: str, score: int, resource=ROLE, control: str = "PER-IAM-1") -> Issue:  # type: ignore[no-untyped-def]
    return Issue(
        control,
        resource,
        score,
        (f"{summary} (+{score})",),
        summary,
        ("x",),
        f"fix {summary}",
        {"k": summary},
    )


def test_merge_makes_one_issue_per_control_and_resource() -> None:
    merged = merge_issues([_issue("a", 40), _issue("b", 85), _issue("c", 10, USER)])
    assert [(i.resource.short_id, i.score) for i in merged] == [("role/r", 85), ("user/u", 10)]
    assert merged[0].summary == "2 problems: (1) a (2) b" and merged[0].evidence == {"k": "a\nb"}
    assert merged[0].fix == "fix a fix b"


def test_clean_pairs_are_those_without_an_issue() -> None:
    ev = Evaluation([_issue("a", 40)])
    ev.cover("PER-IAM-1", ROLE, "fine")
    ev.cover("PER-IAM-1", USER, "fine")
    assert [c.resource.short_id for c in ev.clean()] == ["user/u"]


def test_keep_first_seen_and_resolution() -> None:
    stored = {
        "Id": "perimeter/PER-IAM-1/1/us-east-1/role/r",
        "FirstObservedAt": "2026-01-01T00:00:00.000Z",
        "CreatedAt": "2026-01-01T00:00:00.000Z",
        "UpdatedAt": "2026-01-02T00:00:00.000Z",
        "Description": "was bad",
        "ProductFields": {"perimeter/score": "85", "aws/securityhub/ProductName": "Default"},
        "RecordState": "ACTIVE",
    }
    new = {
        "FirstObservedAt": "2026-02-01T00:00:00.000Z",
        "CreatedAt": "2026-02-01T00:00:00.000Z",
        "UpdatedAt": "2026-02-01T00:00:00.000Z",
    }
    kept = keep_first_seen(new, stored)
    assert (kept["FirstObservedAt"], kept["CreatedAt"]) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00.000Z",
    )
    assert keep_first_seen(new, None) is new
    call = parse_event(
        {
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {
                "eventName": "DetachRolePolicy",
                "eventSource": "iam.amazonaws.com",
                "eventTime": "2026-02-01T00:00:00Z",
                "awsRegion": "us-east-1",
                "recipientAccountId": "1",
                "eventID": "e1",
                "userIdentity": {"arn": "arn:aws:iam::1:user/dana"},
            },
        }
    )
    done = resolved_finding(
        stored,
        call,
        why="role r has no problem.",
        now="2026-02-01T00:00:01.000Z",
        event_time="2026-02-01T00:00:00.000Z",
    )
    assert (done["Compliance"], done["Workflow"], done["RecordState"]) == (
        {"Status": "PASSED"},
        {"Status": "RESOLVED"},
        "ARCHIVED",
    )
    assert (
        done["CreatedAt"] == stored["CreatedAt"]
        and "aws/securityhub/ProductName" not in done["ProductFields"]
    )
    assert (
        done["Description"].startswith("Resolved: role r has no problem.")
        and "was bad" in done["Description"]
    )
