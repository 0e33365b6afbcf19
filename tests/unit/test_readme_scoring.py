"""The README's scoring paragraph is computed, not copied: its examples come out of scoring.py
with the shipped policy, and the numbers it states are the module's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from perimeter.core.rules import Rule
from perimeter.core.scoring import score_rule
from perimeter.policy import load_default_policy
from perimeter.security_groups.context import GroupContext

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
POLICY = load_default_policy()
SCORING = README.split("Scoring (`perimeter/core/scoring.py`)", 1)[1].split("\n\n", 1)[0]


def _score(cidr: str, port: int | None, tier: str, routed: bool | None) -> tuple[int, str]:
    proto, lo = ("tcp", port) if port is not None else ("-1", -1)
    rule = Rule("sg-1", False, proto, lo, lo, cidr, ipv6=":" in cidr)
    ctx = GroupContext(
        group_id="sg-1",
        account="123456789012",
        region="us-east-1",
        vpc_id="vpc-1",
        tags={"perimeter:tier": tier},
        vpc_cidrs=("10.0.0.0/16",),
        internet_routed=routed,
    )
    value = score_rule(rule, ctx, POLICY).value
    return value, POLICY.thresholds.severity_of(value)


@pytest.mark.parametrize(
    ("text", "cidr", "port", "tier"),
    [
        ("scores 29 (LOW) on an internet-routed app group", "203.0.113.9/32", 22, "app"),
        ("44 (MEDIUM)\non the model tier", "203.0.113.9/32", 22, "model"),
        ("SSH from the world on the model tier scores 90", "0.0.0.0/0", 22, "model"),
    ],
)
def test_readme_examples_are_what_scoring_computes(text: str, cidr: str, port: int, tier: str) -> None:
    assert text in SCORING
    value, label = _score(cidr, port, tier, routed=True)
    stated = re.search(r"(\d+)(?: \((\w+)\))?", text.split("scores")[-1])
    assert stated and int(stated.group(1)) == value
    if stated.group(2):
        assert stated.group(2) == label


def test_readme_terms_are_the_modules_terms() -> None:
    # Each term the README names, scored alone against a baseline, moves the score by what it says.
    base, _ = _score("0.0.0.0/0", 8443, "app", routed=None)  # world (+50), another port (+10)
    assert base == 60 and "/0 = 50" in SCORING and "another port 10" in SCORING
    all_traffic = _score("0.0.0.0/0", None, "app", None)[0]
    assert all_traffic - base == 15 and "all traffic or every port 25" in SCORING
    assert _score("0.0.0.0/0", 22, "app", None)[0] - base == 10 and "a high-risk port 20" in SCORING
    assert _score("::/0", 8443, "app", None)[0] - base == 5 and "IPv6 source (+5)" in SCORING
    assert _score("0.0.0.0/0", 8443, "model", None)[0] - base == 15 and "model tier\n(+15)" in SCORING
    assert _score("0.0.0.0/0", 8443, "app", True)[0] - base == 5 and "internet gateway (+5" in SCORING
    assert _score("0.0.0.0/0", 8443, "app", False)[0] - base == -10 and "-10 when it does not" in SCORING
    widths = {"52.0.0.0/8": 40, "52.1.0.0/16": 30, "52.1.2.0/24": 15, "52.1.2.3/32": 4}
    for cidr, points in widths.items():
        assert _score(cidr, 8443, "app", None)[0] == points + 10, cidr
    assert "/8 = 40, /16 = 30, /24 = 15, narrower = 4" in SCORING
    assert "enforce_min_score` (50)" in SCORING and POLICY.thresholds.enforce_min_score == 50
