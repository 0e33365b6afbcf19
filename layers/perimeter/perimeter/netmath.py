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
