"""Controls, scoring and decide over hand-built group contexts (pure tables)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from perimeter.core.controls import REGISTRY, SG_CONTROLS
from perimeter.core.rules import Rule
from perimeter.core.scoring import score_rule
from perimeter.policy import default_policy_text, load_default_policy, parse_policy
from perimeter.security_groups.changes import GroupChange
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.evaluate import GroupDecision, decide

GID = "sg-0123456789abcdef0"
VPC = "vpc-0123456789abcdef0"
VPC_CIDR = "10.0.0.0/16"
TODAY = dt.date(2026, 6, 1)
POLICY = load_default_policy()
MODEL = {"perimeter:tier": "model"}
APP = {"perimeter:tier": "app"}


def with_(path: str, value: Any) -> dict[str, Any]:
    """The default policy document with one field (``a`` or ``a.b``) replaced."""
    doc = yaml.safe_load(default_policy_text())
    head, _, tail = path.partition(".")
    if tail:
        doc[head][tail] = value
    else:
        doc[head] = value
    return doc


def rule(
    proto: str, lo: int | None, hi: int | None, cidr: str, *, egress: bool = False, rid: str = "sgr-1"
) -> Rule:
    return Rule(GID, egress, proto, lo, hi, cidr, ipv6=":" in cidr, rule_id=rid)


def ctx(
    *current: Rule,
    tags: dict[str, str] | None = None,
    cidrs: tuple[str, ...] = (VPC_CIDR,),
    routed: bool | None = None,
) -> GroupContext:
    return GroupContext(
        group_id=GID,
        account="123456789012",
        region="us-east-1",
        group_name="web",
        vpc_id=VPC,
        tags=tags or {},
        vpc_cidrs=cidrs,
        internet_routed=routed,
        current_rules=current,
    )


def judge(
    r: Rule,
    *,
    tags: dict[str, str] | None = None,
    cidrs: tuple[str, ...] = (VPC_CIDR,),
    policy: Any = POLICY,
    present: bool = True,
    routed: bool | None = None,
) -> GroupDecision:
    current = (r,) if present else ()
    return decide(
        GroupChange(GID, (r,)), ctx(*current, tags=tags, cidrs=cidrs, routed=routed), policy, today=TODAY
    )


def summary(d: GroupDecision) -> list[tuple[str, str, bool]]:
    return sorted((v.control.id, v.mode, v.enforce) for v in d.violations)


# (id, rule, tags, vpc cidrs, expected [(control, mode, enforce)])
TABLE: list[tuple[str, Rule, dict[str, str] | None, tuple[str, ...], list[tuple[str, str, bool]]]] = [
    (
        "world-ssh",
        rule("tcp", 22, 22, "0.0.0.0/0"),
        APP,
        (VPC_CIDR,),
        [("PER-SG-1", "enforce", True), ("PER-SG-2", "enforce", True)],
    ),
    (
        "world-ssh-host-bits",
        rule("tcp", 22, 22, "208.236.235.254/0"),
        None,
        (VPC_CIDR,),
        [("PER-SG-1", "enforce", True), ("PER-SG-2", "enforce", True)],
    ),
    ("world-https-app", rule("tcp", 443, 443, "0.0.0.0/0"), APP, (VPC_CIDR,), []),
    ("world-https-untiered", rule("tcp", 443, 443, "0.0.0.0/0"), None, (VPC_CIDR,), []),
    ("world-https-v6-app", rule("tcp", 443, 443, "::/0"), APP, (VPC_CIDR,), []),
    (
        "world-https-model",
        rule("tcp", 443, 443, "0.0.0.0/0"),
        MODEL,
        (VPC_CIDR,),
        [("PER-SG-1", "enforce", True)],
    ),
    # 80-443 is not inside one public spec, and it spans 110/135/143 (high-risk)
    (
        "world-80-443-range",
        rule("tcp", 80, 443, "0.0.0.0/0"),
        APP,
        (VPC_CIDR,),
        [("PER-SG-1", "enforce", True), ("PER-SG-2", "enforce", True)],
    ),
    (
        "world-https-range-444",
        rule("tcp", 443, 444, "0.0.0.0/0"),
        APP,
        (VPC_CIDR,),
        [("PER-SG-1", "enforce", True)],
    ),
    (
        "8080-from-52/8",
        rule("tcp", 8080, 8080, "52.0.0.0/8"),
        APP,
        (VPC_CIDR,),
        [("PER-SG-2", "enforce", True)],
    ),
    ("8080-from-vpc", rule("tcp", 8080, 8080, "10.0.1.0/24"), APP, (VPC_CIDR,), []),
    ("8080-from-52/8-vpc-unknown", rule("tcp", 8080, 8080, "52.0.0.0/8"), APP, (), []),
    # all traffic includes every high-risk port, so PER-SG-2 holds as well as PER-SG-1 and -3
    (
        "all-from-v6-world",
        rule("-1", None, None, "::/0"),
        APP,
        (VPC_CIDR,),
        [("PER-SG-1", "enforce", True), ("PER-SG-2", "enforce", True), ("PER-SG-3", "enforce", True)],
    ),
    ("all-ports-10/8-vpc-unknown", rule("tcp", 0, 65535, "10.0.0.0/8"), APP, (), []),
    (
        "all-ports-10/8-outside-vpc",
        rule("tcp", 0, 65535, "10.0.0.0/8"),
        APP,
        (VPC_CIDR,),
        [("PER-SG-2", "enforce", True), ("PER-SG-3", "enforce", True)],
    ),
    ("all-from-inside-vpc", rule("-1", None, None, "10.0.0.0/16"), APP, (VPC_CIDR,), []),
    ("ssh-slash-32", rule("tcp", 22, 22, "127.0.0.1/32"), APP, (VPC_CIDR,), [("PER-SG-2", "enforce", False)]),
    (
        "egress-all-world-model",
        rule("-1", None, None, "0.0.0.0/0", egress=True),
        MODEL,
        (VPC_CIDR,),
        [("PER-SG-4", "detect", False)],
    ),
    (
        "egress-all-world-v6-model",
        rule("-1", None, None, "::/0", egress=True),
        MODEL,
        (VPC_CIDR,),
        [("PER-SG-4", "detect", False)],
    ),
    ("egress-all-world-app", rule("-1", None, None, "0.0.0.0/0", egress=True), APP, (VPC_CIDR,), []),
    ("egress-443-world-model", rule("tcp", 443, 443, "0.0.0.0/0", egress=True), MODEL, (VPC_CIDR,), []),
    ("egress-ssh-world-app", rule("tcp", 22, 22, "0.0.0.0/0", egress=True), APP, (VPC_CIDR,), []),
    ("icmp-from-world", rule("icmp", -1, -1, "0.0.0.0/0"), APP, (VPC_CIDR,), []),
    ("icmpv6-from-world", rule("icmpv6", -1, -1, "::/0"), MODEL, (VPC_CIDR,), []),
    (
        "udp-snmp-world",
        rule("udp", 161, 161, "0.0.0.0/0"),
        APP,
        (VPC_CIDR,),
        [("PER-SG-1", "enforce", True), ("PER-SG-2", "enforce", True)],
    ),
    ("wide-public-16-https", rule("tcp", 443, 443, "0.0.0.0/16"), APP, (VPC_CIDR,), []),
]


@pytest.mark.parametrize(
    ("r", "tags", "cidrs", "expected"), [c[1:] for c in TABLE], ids=[c[0] for c in TABLE]
)
def test_controls_table(
    r: Rule, tags: dict[str, str] | None, cidrs: tuple[str, ...], expected: list[tuple[str, str, bool]]
) -> None:
    d = judge(r, tags=tags, cidrs=cidrs)
    assert summary(d) == sorted(expected)
    assert {x.key for x in d.to_revoke} == ({r.key} if any(e for _, _, e in expected) else set())


def test_world_ssh_score_and_severity() -> None:
    d = judge(rule("tcp", 22, 22, "0.0.0.0/0"), tags=APP)
    v = d.violations[0]
    assert (v.score.value, v.severity) == (70, "HIGH")
    assert v.why_not_enforced is None


def test_ipv6_reason_in_score() -> None:
    d = judge(rule("-1", None, None, "::/0"), tags=APP)
    for v in d.violations:
        assert "IPv6 source, often missed by reviews (+5)" in v.score.reasons
        assert v.score.value == 50 + 25 + 5


def test_slash_32_ssh_detect_only_with_reason() -> None:
    (v,) = judge(rule("tcp", 22, 22, "127.0.0.1/32"), tags=APP).violations
    assert v.score.value < POLICY.thresholds.enforce_min_score
    assert v.severity == "LOW"
    assert not v.enforce
    assert v.why_not_enforced == f"score {v.score.value} below enforce threshold 50"


def test_model_tier_egress_is_detect_by_default() -> None:
    (v,) = judge(rule("-1", None, None, "0.0.0.0/0", egress=True), tags=MODEL).violations
    assert v.why_not_enforced == "mode is detect"
    enforcing = parse_policy(with_("controls.PER-SG-4", {"mode": "enforce"}))
    (v,) = judge(rule("-1", None, None, "0.0.0.0/0", egress=True), tags=MODEL, policy=enforcing).violations
    assert v.enforce


def test_exemption_by_tag_keeps_violation_but_not_enforced() -> None:
    policy = parse_policy(
        with_(
            "exemptions",
            [
                {
                    "tag": {"key": "perimeter:exempt", "value": "sftp"},
                    "reason": "SFTP, SEC-9",
                    "expires": "2027-01-01",
                }
            ],
        )
    )
    d = judge(rule("tcp", 22, 22, "0.0.0.0/0"), tags={**APP, "perimeter:exempt": "sftp"}, policy=policy)
    assert {v.control.id for v in d.violations} == {"PER-SG-1", "PER-SG-2"}
    for v in d.violations:
        assert v.exemption is not None and not v.enforce
        assert v.why_not_enforced == "exempt: tag perimeter:exempt until 2027-01-01: SFTP, SEC-9"
    assert d.to_revoke == ()


def test_exemption_narrowed_to_one_control() -> None:
    policy = parse_policy(
        with_(
            "exemptions",
            [{"security_group": GID, "reason": "r", "expires": "2027-01-01", "controls": ["PER-SG-1"]}],
        )
    )
    d = judge(rule("tcp", 22, 22, "0.0.0.0/0"), tags=APP, policy=policy)
    assert summary(d) == [("PER-SG-1", "enforce", False), ("PER-SG-2", "enforce", True)]
    assert len(d.to_revoke) == 1  # one offending, non-exempt control is enough


def test_expired_exemption_ignored() -> None:
    policy = parse_policy(
        with_("exemptions", [{"security_group": GID, "reason": "r", "expires": "2026-05-31"}])
    )
    d = judge(rule("tcp", 22, 22, "0.0.0.0/0"), tags=APP, policy=policy)
    assert all(v.exemption is None and v.enforce for v in d.violations)


def test_principal_exemption() -> None:
    policy = parse_policy(
        with_(
            "exemptions",
            [
                {
                    "principal": "arn:aws:sts::*:assumed-role/BreakGlass/*",
                    "reason": "r",
                    "expires": "2027-01-01",
                }
            ],
        )
    )
    r = rule("tcp", 22, 22, "0.0.0.0/0")
    change, c = GroupChange(GID, (r,)), ctx(r, tags=APP)
    glass = decide(change, c, policy, principal_arn="arn:aws:sts::1:assumed-role/BreakGlass/ann", today=TODAY)
    other = decide(change, c, policy, principal_arn="arn:aws:sts::1:assumed-role/Dev/ann", today=TODAY)
    assert glass.to_revoke == () and len(other.to_revoke) == 1


def test_dry_run_enforces_nothing() -> None:
    dry = POLICY.with_dry_run(True)
    for _, r, tags, cidrs, _ in TABLE:
        d = judge(r, tags=tags, cidrs=cidrs, policy=dry)
        assert d.to_revoke == ()
        assert all(v.mode == "detect" and v.why_not_enforced == "mode is detect" for v in d.violations)


def test_rule_absent_from_current_state_is_not_enforced() -> None:
    d = judge(rule("tcp", 22, 22, "0.0.0.0/0"), tags=APP, present=False)
    assert d.violations and all(not v.present and not v.enforce for v in d.violations)
    assert d.violations[0].why_not_enforced == "rule no longer present"
    assert d.to_revoke == ()
    assert len(d.absent_violating) == 1


def test_current_copy_wins_and_record_id_fills_gap() -> None:
    record_rule = Rule(GID, False, "tcp", 22, 22, "208.236.235.254/0", rule_id="sgr-from-record")
    current = Rule(GID, False, "tcp", 22, 22, "0.0.0.0/0")
    d = decide(GroupChange(GID, (record_rule,)), ctx(current, tags=APP), POLICY, today=TODAY)
    (revoke,) = d.to_revoke
    assert (revoke.cidr, revoke.rule_id) == ("0.0.0.0/0", "sgr-from-record")


def test_unknown_direction_resolved_from_current_rules() -> None:
    """ModifySecurityGroupRules names a rule id, not its direction: the current rules decide."""
    modified = Rule(GID, None, "-1", -1, -1, "0.0.0.0/0", rule_id="sgr-9")
    current_egress = Rule(GID, True, "-1", None, None, "0.0.0.0/0")
    d = decide(GroupChange(GID, (modified,)), ctx(current_egress, tags=MODEL), POLICY, today=TODAY)
    assert summary(d) == [("PER-SG-4", "detect", False)]
    assert d.violations[0].rule.egress is True and d.violations[0].rule.rule_id == "sgr-9"
    unresolved = decide(GroupChange(GID, (modified,)), ctx(tags=MODEL), POLICY, today=TODAY)
    assert unresolved.violations == ()


def test_whole_group_judges_current_rules() -> None:
    default_egress = Rule(GID, True, "-1", None, None, "0.0.0.0/0")
    change = GroupChange(GID, (), whole_group=True)
    assert summary(decide(change, ctx(default_egress, tags=MODEL), POLICY, today=TODAY)) == [
        ("PER-SG-4", "detect", False)
    ]
    assert decide(change, ctx(default_egress, tags=APP), POLICY, today=TODAY).violations == ()


def test_deleted_group_nothing_present() -> None:
    r = rule("tcp", 22, 22, "0.0.0.0/0")
    gone = replace(ctx(tags=APP), exists=False)
    d = decide(GroupChange(GID, (r,)), gone, POLICY, today=TODAY)
    assert d.to_revoke == () and all(not v.present for v in d.violations)


def test_off_mode_skips_control() -> None:
    policy = parse_policy(with_("controls.PER-SG-2", {"mode": "off"}))
    assert summary(judge(rule("tcp", 22, 22, "0.0.0.0/0"), tags=APP, policy=policy)) == [
        ("PER-SG-1", "enforce", True)
    ]


def test_trusted_cidr_admits_high_risk_port() -> None:
    policy = parse_policy(with_("trusted_cidrs", ["203.0.113.0/24"]))
    assert judge(rule("tcp", 22, 22, "203.0.113.7/32"), tags=APP, policy=policy).violations == ()
    assert judge(rule("tcp", 22, 22, "203.0.112.0/23"), tags=APP, policy=policy).violations != ()


def test_world_threshold_widens_sg1() -> None:
    policy = parse_policy(with_("thresholds.world_max_prefix", {"ipv4": 8, "ipv6": 16}))
    assert "PER-SG-1" in {
        v.control.id for v in judge(rule("tcp", 5601, 5601, "52.0.0.0/8"), policy=policy).violations
    }
    assert "PER-SG-1" not in {v.control.id for v in judge(rule("tcp", 5601, 5601, "52.0.0.0/8")).violations}


def test_sg_controls_registered_with_texts() -> None:
    assert [c.id for c in SG_CONTROLS] == ["PER-SG-1", "PER-SG-2", "PER-SG-3", "PER-SG-4"]
    for c in SG_CONTROLS:
        assert REGISTRY[c.id] is c
        assert c.title and c.description and c.remediation and c.types and c.permissions
        assert all(p.startswith("ec2:Revoke") for p in c.permissions)


# --- scoring arithmetic -------------------------------------------------------------------

_POINTS = re.compile(r"\(([+-]\d+)\)$")


def reasons_total(reasons: tuple[str, ...]) -> int:
    total = 0
    for text in reasons:
        m = _POINTS.search(text)
        assert m, f"reason without points: {text!r}"
        total += int(m.group(1))
    return total


@pytest.mark.parametrize(
    ("r", "tags", "routed", "value"),
    [
        (rule("tcp", 22, 22, "0.0.0.0/0"), APP, None, 70),
        (rule("tcp", 22, 22, "0.0.0.0/0"), APP, True, 75),
        (rule("tcp", 22, 22, "0.0.0.0/0"), APP, False, 60),
        (rule("tcp", 8080, 8080, "52.0.0.0/8"), MODEL, True, 80),
        (rule("-1", None, None, "::/0"), MODEL, True, 100),  # 50+25+5+15+5 = 100
        (rule("tcp", 22, 22, "127.0.0.1/32"), None, False, 14),
        (rule("icmp", -1, -1, "10.1.2.3/32"), None, False, 0),  # 4+0-10 clamps to 0
    ],
)
def test_score_values(r: Rule, tags: dict[str, str] | None, routed: bool | None, value: int) -> None:
    s = score_rule(r, ctx(tags=tags, routed=routed), POLICY)
    assert s.value == value
    assert s.value == max(0, min(100, reasons_total(s.reasons)))


@given(
    st.sampled_from(["tcp", "udp", "icmp", "-1", "50"]),
    st.integers(-1, 65535),
    st.integers(-1, 65535),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
    st.sampled_from([None, MODEL, APP]),
    st.sampled_from([None, True, False]),
    st.booleans(),
)
def test_score_reasons_sum_to_value(
    proto: str,
    lo: int,
    hi: int,
    addr: int,
    prefix: int,
    tags: dict[str, str] | None,
    routed: bool | None,
    v6: bool,
) -> None:
    import ipaddress

    net = ipaddress.ip_network(f"{ipaddress.IPv4Address(addr)}/{prefix}", strict=False)
    cidr = f"2001:db8::/{prefix * 4}" if v6 else str(net)
    r = Rule(GID, False, proto, lo, hi, cidr, ipv6=v6)
    s = score_rule(r, ctx(tags=tags, routed=routed), POLICY)
    assert 0 <= s.value <= 100
    assert s.value == max(0, min(100, reasons_total(s.reasons)))
