"""CIDR and port arithmetic: tables for the known traps, hypothesis for the laws."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from perimeter.core.netmath import (
    ALL_PORTS,
    CidrError,
    PortRange,
    address_count_log2,
    is_world,
    normalize_protocol,
    parse_cidr,
    parse_port_spec,
    rule_ports,
    to_int_port,
    within_any,
)


@pytest.mark.parametrize(
    ("cidr", "max_prefix", "expected"),
    [
        ("0.0.0.0/0", 0, True),
        ("208.236.235.254/0", 0, True),  # the stratus record: host bits on a /0
        ("10.1.2.3/0", 0, True),
        ("::/0", 0, True),
        ("2001:db8::1/0", 0, True),
        ("0.0.0.0/1", 0, False),
        ("0.0.0.0/16", 0, False),  # panther-1: a /16 is not the world at threshold 0
        ("0.0.0.0/16", 16, False),  # ...and 0.0.0.0/16 is reserved ("this network"), not public
        ("52.0.0.0/8", 8, True),
        ("52.0.0.0/8", 0, False),
        ("10.0.0.0/8", 8, False),  # private, however wide
        ("127.0.0.1/32", 32, False),
        ("2600::/16", 16, True),
        ("fd00::/8", 16, False),
        (" 0.0.0.0/0 ", 0, True),
    ],
)
def test_is_world(cidr: str, max_prefix: int, expected: bool) -> None:
    assert is_world(cidr, max_prefix) is expected


@pytest.mark.parametrize("bad", ["", "office", "10.0.0.300/24", "10.0.0.0/33", "::/129", "1.2.3.4/-1"])
def test_parse_cidr_errors(bad: str) -> None:
    with pytest.raises(CidrError, match="not a CIDR"):
        parse_cidr(bad)


@given(st.integers(0, 2**32 - 1))
def test_any_ipv4_slash_zero_is_world(addr: int) -> None:
    text = f"{ipaddress.IPv4Address(addr)}/0"
    assert is_world(text)
    assert str(parse_cidr(text)) == "0.0.0.0/0"
    assert address_count_log2(text) == 32


@given(st.integers(0, 2**128 - 1))
def test_any_ipv6_slash_zero_is_world(addr: int) -> None:
    text = f"{ipaddress.IPv6Address(addr)}/0"
    assert is_world(text)
    assert str(parse_cidr(text)) == "::/0"
    assert address_count_log2(text) == 128


@given(st.integers(0, 2**32 - 1), st.integers(1, 32))
def test_host_bits_ignored_and_only_slash_zero_is_world_by_default(addr: int, prefix: int) -> None:
    text = f"{ipaddress.IPv4Address(addr)}/{prefix}"
    net = parse_cidr(text)
    assert net.prefixlen == prefix
    assert net == ipaddress.ip_network(text, strict=False)
    assert not is_world(text)
    assert address_count_log2(text) == 32 - prefix


@pytest.mark.parametrize(
    ("cidr", "networks", "expected"),
    [
        ("10.0.1.0/24", ["10.0.0.0/16"], True),
        ("10.0.0.0/16", ["10.0.0.0/16"], True),
        ("10.0.0.0/8", ["10.0.0.0/16"], False),
        ("10.1.0.0/24", ["172.16.0.0/12", "10.1.0.0/16"], True),
        ("10.0.0.5/16", ["10.0.0.0/16"], True),  # host bits
        ("2001:db8:1::/48", ["2001:db8::/32"], True),
        ("::/0", ["0.0.0.0/0"], False),  # never across versions
        ("0.0.0.0/0", ["::/0"], False),
        ("10.0.0.0/24", [], False),
    ],
)
def test_within_any(cidr: str, networks: list[str], expected: bool) -> None:
    assert within_any(cidr, networks) is expected


@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.integers(0, 32))
def test_within_any_matches_prefix_containment(addr: int, inner: int, outer: int) -> None:
    a = ipaddress.IPv4Address(addr)
    inner_net = ipaddress.ip_network(f"{a}/{inner}", strict=False)
    outer_net = ipaddress.ip_network(f"{a}/{outer}", strict=False)
    assert within_any(str(inner_net), [str(outer_net)]) is (outer <= inner)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("tcp", "tcp"),
        ("TCP", "tcp"),
        (" Tcp ", "tcp"),
        ("6", "tcp"),
        (6, "tcp"),
        ("udp", "udp"),
        ("17", "udp"),
        (17, "udp"),
        ("icmp", "icmp"),
        ("1", "icmp"),
        ("58", "icmpv6"),
        ("icmpv6", "icmpv6"),
        ("-1", "-1"),
        (-1, "-1"),
        ("all", "-1"),
        ("ALL", "-1"),
        (None, "-1"),
        ("50", "50"),  # ESP: a number stays a number
    ],
)
def test_normalize_protocol(raw: object, expected: str) -> None:
    assert normalize_protocol(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("protocol", "from_port", "to_port", "expected"),
    [
        ("-1", None, None, ALL_PORTS),
        ("-1", 22, 22, ALL_PORTS),  # ports mean nothing for all traffic
        ("tcp", 22, 22, PortRange(22, 22)),
        ("tcp", 1000, 2000, PortRange(1000, 2000)),
        ("tcp", 2000, 1000, PortRange(1000, 2000)),
        ("udp", -1, -1, ALL_PORTS),
        ("tcp", -1, 22, ALL_PORTS),
        ("tcp", 22, -1, ALL_PORTS),
        ("tcp", None, None, ALL_PORTS),
        ("tcp", 0, 65535, ALL_PORTS),
        ("icmp", 8, 0, None),
        ("icmp", -1, -1, None),
        ("icmpv6", -1, -1, None),
        ("50", None, None, ALL_PORTS),  # a protocol without ports: the whole protocol
    ],
)
def test_rule_ports(
    protocol: str, from_port: int | None, to_port: int | None, expected: PortRange | None
) -> None:
    assert rule_ports(protocol, from_port, to_port) == expected


def test_port_range_text() -> None:
    assert str(ALL_PORTS) == "all ports"
    assert str(PortRange(22, 22)) == "22"
    assert str(PortRange(8000, 8002)) == "8000-8002"
    assert ALL_PORTS.is_all and not PortRange(0, 65534).is_all


small_ranges = st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: PortRange(min(t), max(t)))


@given(small_ranges, small_ranges)
def test_overlaps_symmetric_and_brute_force(a: PortRange, b: PortRange) -> None:
    brute = bool(set(range(a.low, a.high + 1)) & set(range(b.low, b.high + 1)))
    assert a.overlaps(b) is brute
    assert b.overlaps(a) is brute


@given(small_ranges)
def test_overlaps_reflexive_and_all_ports_overlaps_everything(a: PortRange) -> None:
    assert a.overlaps(a)
    assert ALL_PORTS.overlaps(a) and a.overlaps(ALL_PORTS)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("22", PortRange(22, 22)),
        (22, PortRange(22, 22)),
        ("8000-8010", PortRange(8000, 8010)),
        (" 0-65535 ", ALL_PORTS),
        ("0", PortRange(0, 0)),
    ],
)
def test_parse_port_spec(spec: str | int, expected: PortRange) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "not a port or port range"),
        ("ssh", "not a port or port range"),
        ("22-", "not a port or port range"),
        ("-22", "not a port or port range"),
        ("1-2-3", "not a port or port range"),
        ("22,23", "not a port or port range"),
        ("65536", "out of bounds"),
        ("23-20", "out of bounds"),
        (70000, "out of bounds"),
    ],
)
def test_parse_port_spec_errors(spec: str | int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_port_spec(spec)


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_parse_port_spec_round_trips(a: int, b: int) -> None:
    low, high = min(a, b), max(a, b)
    assert parse_port_spec(f"{low}-{high}") == PortRange(low, high)
    assert parse_port_spec(str(PortRange(low, high)) if low or high < 65535 else "0-65535") == PortRange(
        low, high
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [(22, 22), ("22", 22), (" 443 ", 443), ("-1", -1), (None, None), ("", None)]
)
def test_to_int_port(raw: object, expected: int | None) -> None:
    assert to_int_port(raw) == expected


@pytest.mark.parametrize("bad", [True, "ssh", "22.5"])
def test_to_int_port_errors(bad: object) -> None:
    with pytest.raises(ValueError, match="not a port"):
        to_int_port(bad)
