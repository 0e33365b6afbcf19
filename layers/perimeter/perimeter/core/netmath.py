"""CIDR and port arithmetic for security-group rules.

Kept apart from the controls because every control asks the same questions (is this the
world? does this range touch that port?) and these are where subtle bugs hide: host bits on a
``/0``, IPv6, protocol ``-1`` meaning every port, port ranges overlapping port lists. Pure, no
boto3; property-tested in ``tests/unit/test_netmath.py``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALL_PROTOCOLS = "-1"
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": ALL_PROTOCOLS}
PORTED_PROTOCOLS = frozenset({"tcp", "udp"})
MAX_PORT = 65535


class CidrError(ValueError):
    """A CIDR string that cannot be read as an IPv4 or IPv6 network."""


@lru_cache(maxsize=4096)
def parse_cidr(text: str) -> IPNetwork:
    """Parse a CIDR the way AWS reads it: host bits are ignored (``1.2.3.4/0`` is the world).

    Raises:
        CidrError: the text is not a network.
    """
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except (ValueError, AttributeError) as exc:
        raise CidrError(f"not a CIDR: {text!r}") from exc


def is_world(cidr: str, max_prefix: int = 0) -> bool:
    """True when the network is the whole address space, or wider than ``max_prefix`` bits
    and not entirely private (a /8 of RFC 1918 space is wide, but it is not the internet)."""
    net = parse_cidr(cidr)
    if net.prefixlen == 0:
        return True
    return net.prefixlen <= max_prefix and not net.is_private


def within_any(cidr: str, networks: Iterable[str]) -> bool:
    """True when ``cidr`` lies entirely inside one of ``networks`` (same IP version)."""
    net = parse_cidr(cidr)
    for other in networks:
        outer = parse_cidr(other)
        if outer.version == net.version and net.subnet_of(outer):  # type: ignore[arg-type]
            return True
    return False


def address_count_log2(cidr: str) -> int:
    """Host bits of the network: 32 for an IPv4 /0, 0 for a /32."""
    net = parse_cidr(cidr)
    return net.max_prefixlen - net.prefixlen


def normalize_protocol(protocol: str | int | None) -> str:
    """Map the many spellings CloudTrail and the API use to one: ``tcp``, ``udp``, ``icmp``,
    ``icmpv6``, ``-1`` (all), or the IANA number as text for anything else."""
    if protocol is None:
        return ALL_PROTOCOLS
    text = str(protocol).strip().lower()
    return _PROTOCOL_NAMES.get(text, text)


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive range of TCP/UDP ports."""

    low: int
    high: int

    def overlaps(self, other: PortRange) -> bool:
        return self.low <= other.high and other.low <= self.high

    @property
    def is_all(self) -> bool:
        return self.low <= 0 and self.high >= MAX_PORT

    def __str__(self) -> str:
        if self.is_all:
            return "all ports"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


ALL_PORTS = PortRange(0, MAX_PORT)


def rule_ports(protocol: str, from_port: int | None, to_port: int | None) -> PortRange | None:
    """The ports a rule opens: every port for protocol ``-1`` (or a numbered protocol, which
    carries no ports and so opens the whole protocol), the range for TCP/UDP (``-1`` or a
    missing bound means all), and ``None`` for ICMP, which has types, not ports."""
    if protocol in ("icmp", "icmpv6"):
        return None
    if protocol not in PORTED_PROTOCOLS:
        return ALL_PORTS
    if from_port is None or to_port is None or from_port < 0 or to_port < 0:
        return ALL_PORTS
    return PortRange(min(from_port, to_port), max(from_port, to_port))


def parse_port_spec(spec: str | int) -> PortRange:
    """``"22"``, ``22`` or ``"8000-8010"`` → PortRange. Raises ValueError on anything else."""
    text = str(spec).strip()
    low_text, sep, high_text = text.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError as exc:
        raise ValueError(f"not a port or port range: {spec!r}") from exc
    if not (0 <= low <= high <= MAX_PORT):
        raise ValueError(f"port range out of bounds: {spec!r}")
    return PortRange(low, high)


def to_int_port(value: object) -> int | None:
    """CloudTrail writes ports as numbers, Panther as strings; absent means unset."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a port: {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"not a port: {value!r}") from exc


# --- fast network arithmetic (the evaluation's hot path) ----------------------------------
#
# ``ipaddress`` objects cost microseconds to build and compare; a group of 10,000 rules, or a
# sweep over a region, judges far more networks than a 4096-entry LRU holds. Networks are read
# once into ``Net`` (version, first and last address as integers, prefix length) and kept in a
# plain dict cleared when it grows past ``_NET_CACHE_MAX`` (no LRU bookkeeping per hit).


class Net(tuple[int, int, int, int]):
    """``(version, first, last, prefixlen)`` of a network, host bits cleared."""

    __slots__ = ()

    @property
    def version(self) -> int:
        return self[0]

    @property
    def prefixlen(self) -> int:
        return self[3]

    @property
    def size_log2(self) -> int:
        return (32 if self[0] == 4 else 128) - self[3]

    def within(self, other: Net) -> bool:
        return self[0] == other[0] and other[1] <= self[1] and self[2] <= other[2]


_NETS: dict[str, Net] = {}
_NET_CACHE_MAX = 1 << 17
_V4_ALL = (1 << 32) - 1
_V6_ALL = (1 << 128) - 1


def _octet(text: str) -> int:
    if not text.isdigit() or len(text) > 3 or (len(text) > 1 and text[0] == "0"):
        raise ValueError(text)
    value = int(text)
    if value > 255:
        raise ValueError(text)
    return value


def _parse_net(text: str) -> Net:
    addr, sep, plen_text = text.strip().partition("/")
    if ":" not in addr:
        try:
            a, b, c, d = addr.split(".")
            value = (_octet(a) << 24) | (_octet(b) << 16) | (_octet(c) << 8) | _octet(d)
            if sep and not (plen_text.isdigit() and len(plen_text) <= 2):
                raise ValueError(plen_text)
            plen = int(plen_text) if sep else 32
            if plen > 32:
                raise ValueError(plen_text)
        except ValueError:
            pass  # let ipaddress give the canonical error (or accept what it accepts)
        else:
            host = _V4_ALL >> plen
            first = value & ~host & _V4_ALL
            return Net((4, first, first | host, plen))
    net = parse_cidr(text)
    return Net((net.version, int(net.network_address), int(net.broadcast_address), net.prefixlen))


def net_of(text: str) -> Net:
    """The ``Net`` of a CIDR text, host bits ignored as AWS does.

    Raises:
        CidrError: the text is not a network.
    """
    hit = _NETS.get(text)
    if hit is None:
        hit = _parse_net(text)
        if len(_NETS) >= _NET_CACHE_MAX:
            _NETS.clear()
        _NETS[text] = hit
    return hit


def net_text(net: Net) -> str:
    """Canonical CIDR text of a ``Net`` (``10.0.0.0/8``, ``2000::/3``)."""
    if net[0] == 4:
        return f"{ipaddress.IPv4Address(net[1])}/{net[3]}"
    return f"{ipaddress.IPv6Address(net[1])}/{net[3]}"


def _ranges(*cidrs: str) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((n[1], n[2]) for n in (net_of(c) for c in cidrs)))


#: IPv4 space that is not reachable from the internet (IANA special-purpose registry: "this
#: network", RFC 1918, shared CGN space, loopback, link-local, IETF/documentation/benchmark
#: blocks, multicast, reserved). Everything else is public.
NON_PUBLIC_V4 = _ranges(
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
#: IPv6 space routed on the internet: global unicast, 2000::/3 (RFC 4291; IANA allocates
#: nothing outside it to the RIRs).
PUBLIC_V6 = _ranges("2000::/3")


def _complement(ranges: tuple[tuple[int, int], ...], top: int) -> tuple[tuple[int, int], ...]:
    out = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= top:
        out.append((start, top))
    return tuple(out)


PUBLIC_V4 = _complement(NON_PUBLIC_V4, _V4_ALL)
PUBLIC_RANGES = {4: PUBLIC_V4, 6: PUBLIC_V6}
PUBLIC_TOTAL = {v: sum(hi - lo + 1 for lo, hi in r) for v, r in PUBLIC_RANGES.items()}


def _public_in(lo: int, hi: int, version: int) -> int:
    total = 0
    for plo, phi in PUBLIC_RANGES[version]:
        if plo > hi:
            break
        if phi >= lo:
            total += min(hi, phi) - max(lo, plo) + 1
    return total


def public_count(net: Net) -> int:
    """How many internet-routable addresses the network holds."""
    return _public_in(net[1], net[2], net[0])


def public_share(nets: Iterable[Net]) -> dict[int, float]:
    """Per IP version, the share (0-1) of public address space that the union of ``nets``
    covers: overlapping networks count once."""
    by_version: dict[int, list[tuple[int, int]]] = {}
    for n in nets:
        by_version.setdefault(n[0], []).append((n[1], n[2]))
    out: dict[int, float] = {}
    for version, spans in by_version.items():
        spans.sort()
        covered = 0
        cur_lo, cur_hi = spans[0]
        for lo, hi in spans[1:]:
            if lo <= cur_hi + 1:
                if hi > cur_hi:
                    cur_hi = hi
            else:
                covered += _public_in(cur_lo, cur_hi, version)
                cur_lo, cur_hi = lo, hi
        covered += _public_in(cur_lo, cur_hi, version)
        out[version] = covered / PUBLIC_TOTAL[version]
    return out
