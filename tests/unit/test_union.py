"""Exposure is the union (issue 8, item 2): pure tables over hand-built groups."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from perimeter.core.netmath import PUBLIC_TOTAL, net_of, public_share
from perimeter.core.rules import Rule
from perimeter.policy import load_default_policy
from perimeter.security_groups.changes import GroupChange
from perimeter.security_groups.context import GroupContext, PrefixList
from perimeter.security_groups.evaluate import evaluate_group

GID = "sg-0123456789abcdef0"
POLICY = load_default_policy()
APP = {"perimeter:tier": "app"}


def tcp(lo: int, hi: int, cidr: str | None = None, *, pl: str | None = None, rid: str = "") -> Rule:
    return Rule(
        GID,
        False,
        "tcp",
        lo,
        hi,
        cidr,
        ipv6=bool(cidr and ":" in cidr),
        prefix_list_id=pl,
        rule_id=rid or None,
    )


def sg1(
    *rules: Rule, pls: dict[str, PrefixList] | None = None, tags: dict[str, str] = APP
) -> set[str | None]:
    ctx = GroupContext(
        group_id=GID,
        account="123456789012",
        region="us-east-1",
        vpc_id="vpc-1",
        tags=tags,
        vpc_cidrs=("10.0.0.0/16",),
        current_rules=rules,
        prefix_lists=pls or {},
    )
    d = evaluate_group(ctx, POLICY)
    return {v.rule.rule_id for v in d.violations if v.control.id == "PER-SG-1"}


FIFTY = [f"{n}.0.0.0/8" for n in range(11, 61)]


def test_public_space_totals() -> None:
    # 2^32 minus the special-purpose blocks; 2000::/3 for IPv6
    assert 3_700_000_000 < PUBLIC_TOTAL[4] < 3_710_000_000
    assert PUBLIC_TOTAL[6] == 2**125


@pytest.mark.parametrize(
    ("cidrs", "low", "high"),
    [
        (["0.0.0.0/1", "128.0.0.0/1"], 1.0, 1.0),
        (["0.0.0.0/0"], 1.0, 1.0),
        (["2000::/3"], 1.0, 1.0),
        (["10.0.0.0/8", "192.168.0.0/16"], 0.0, 0.0),
        (FIFTY, 0.22, 0.23),
        (["52.0.0.0/8", "52.0.0.0/9"], 1 / 220.7, 1 / 220.6),  # overlap counts once
    ],
)
def test_public_share(cidrs: list[str], low: float, high: float) -> None:
    shares = public_share(net_of(c) for c in cidrs)
    assert low <= max(shares.values()) <= high


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([tcp(9443, 9443, "0.0.0.0/1", rid="a"), tcp(9443, 9443, "128.0.0.0/1", rid="b")], {"a", "b"}),
        ([tcp(9443, 9443, "2000::/3", rid="a")], {"a"}),
        ([tcp(9443, 9443, c, rid=f"r{i}") for i, c in enumerate(FIFTY)], {f"r{i}" for i in range(50)}),
        # two /4s make 14% of public IPv4 together on one port ...
        ([tcp(9000, 9000, "64.0.0.0/4", rid="a"), tcp(9000, 9000, "80.0.0.0/4", rid="b")], {"a", "b"}),
        # ... but not on different ports
        ([tcp(9000, 9000, "64.0.0.0/4", rid="a"), tcp(9001, 9001, "80.0.0.0/4", rid="b")], set()),
        # a range and a port inside it share that port
        ([tcp(9000, 9010, "64.0.0.0/4", rid="a"), tcp(9005, 9005, "80.0.0.0/4", rid="b")], {"a", "b"}),
        # all traffic joins every port
        (
            [
                Rule(GID, False, "-1", None, None, "64.0.0.0/4", rule_id="a"),
                tcp(5601, 5601, "80.0.0.0/4", rid="b"),
            ],
            {"a", "b"},
        ),
        # the public allow-list stays public, however wide the union
        ([tcp(443, 443, "0.0.0.0/1", rid="a"), tcp(443, 443, "128.0.0.0/1", rid="b")], set()),
        ([tcp(9443, 9443, "52.0.0.0/8", rid="a"), tcp(9443, 9443, "54.0.0.0/8", rid="b")], set()),
    ],
    ids=[
        "two-/1",
        "2000::/3",
        "fifty-/8",
        "two-/4-one-port",
        "two-/4-two-ports",
        "range",
        "all-traffic",
        "public-port",
        "two-/8",
    ],
)
def test_union_table(rules: list[Rule], expected: set[str]) -> None:
    assert sg1(*rules) == expected


def test_customer_prefix_list_entries_join_the_union() -> None:
    pls = {
        "pl-c": PrefixList("pl-c", False, ("64.0.0.0/4",)),
        "pl-w": PrefixList("pl-w", False, ("10.1.0.0/16", "0.0.0.0/0")),
        "pl-aws": PrefixList("pl-aws", True, ()),
    }
    assert sg1(tcp(9000, 9000, pl="pl-c", rid="a"), tcp(9000, 9000, "80.0.0.0/4", rid="b"), pls=pls) == {
        "a",
        "b",
    }
    assert sg1(tcp(9000, 9000, pl="pl-w", rid="w"), pls=pls) == {"w"}
    assert sg1(tcp(22, 22, pl="pl-aws", rid="s"), pls=pls) == set()
    assert sg1(tcp(22, 22, pl="pl-unread", rid="u"), pls=pls) == set()  # unread: nothing proven


def test_union_score_says_why() -> None:
    ctx = GroupContext(
        group_id=GID,
        account="1",
        region="us-east-1",
        tags=APP,
        current_rules=(tcp(9000, 9000, "64.0.0.0/4", rid="a"), tcp(9000, 9000, "80.0.0.0/4", rid="b")),
    )
    d = evaluate_group(ctx, POLICY)
    (v,) = [v for v in d.violations if v.rule.rule_id == "a"]
    assert v.score.reasons[0] == (
        "sources of tcp/9000 with 1 other rule(s) cover 15% of public address space: the world (+50)"
    )
    assert v.enforce  # 50 + 10: at the enforce threshold


def test_decide_is_evaluate_group_with_the_change_as_added() -> None:
    r = tcp(22, 22, "0.0.0.0/0")
    ctx = GroupContext(group_id=GID, account="1", region="us-east-1", current_rules=(r,))
    a = evaluate_group(ctx, POLICY, added=(r,))
    from perimeter.security_groups.evaluate import decide

    b = decide(GroupChange(GID, (r,)), ctx, POLICY)
    assert [(v.control.id, v.added) for v in a.violations] == [(v.control.id, v.added) for v in b.violations]


@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_net_of_matches_ipaddress(addr: int, prefix: int) -> None:
    text = f"{ipaddress.IPv4Address(addr)}/{prefix}"
    net = ipaddress.ip_network(text, strict=False)
    assert net_of(text) == (4, int(net.network_address), int(net.broadcast_address), prefix)


@given(st.lists(st.tuples(st.integers(0, 255), st.integers(4, 12)), min_size=1, max_size=6))
def test_public_share_matches_a_brute_count(blocks: list[tuple[int, int]]) -> None:
    """Against ipaddress: collapse the networks, count each /16 of them that is global."""
    nets = [ipaddress.ip_network(f"{a}.0.0.0/{p}", strict=False) for a, p in blocks]
    collapsed = list(ipaddress.collapse_addresses(nets))
    non_public = [
        ipaddress.ip_network(c)
        for c in (
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",
        )
    ]
    total = 0
    for n in collapsed:
        total += n.num_addresses
        for bad in non_public:
            if n.overlaps(bad):
                inner = bad if bad.subnet_of(n) else n
                total -= inner.num_addresses
    expected = total / PUBLIC_TOTAL[4]
    assert abs(public_share(net_of(str(n)) for n in nets)[4] - expected) < 1e-12
