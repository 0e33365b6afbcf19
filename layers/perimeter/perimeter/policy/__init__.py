"""Policy: what Perimeter enforces, as validated data.

The YAML (``default.yaml`` beside this file, or an SSM parameter in a deployment) is read once
per container and validated here field by field; a bad policy raises ``PolicyError`` naming the
path of the bad field (``thresholds.enforce_min_score: must be an integer 0-100``), so a broken
deployment fails at cold start instead of enforcing something nobody wrote. ``schema.json``
describes the same document for editors and CI; a test keeps the two in step.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from perimeter.core.netmath import CidrError, PortRange, normalize_protocol, parse_cidr, parse_port_spec

MODES = ("off", "detect", "enforce")

#: Every control id of DESIGN.md §2. A policy may name only these.
CONTROL_IDS = (
    "PER-SG-1",
    "PER-SG-2",
    "PER-SG-3",
    "PER-SG-4",
    "PER-SG-5",
    "PER-DSG-1",
    "PER-DSG-2",
    "PER-TIER-1",
    "PER-VPC-1",
    "PER-VPC-2",
    "PER-IAM-1",
    "PER-GR-1",
    "PER-FL-1",
    "PER-REV-1",
    "PER-REV-2",
    "PER-EXM-1",
    "PER-NET-1",
)

SEVERITY_LABELS = ("critical", "high", "medium", "low")


class PolicyError(ValueError):
    """The policy document is invalid; the message starts with the path of the bad field."""


@dataclass(frozen=True, slots=True)
class PortSpec:
    protocol: str
    ports: PortRange

    def overlaps(self, protocol: str, ports: PortRange | None) -> bool:
        if ports is None:
            return False
        if protocol != "-1" and protocol != self.protocol:
            return False
        return self.ports.overlaps(ports)

    def covers(self, protocol: str, ports: PortRange | None) -> bool:
        """True when every port the rule opens is inside this spec."""
        if ports is None or protocol != self.protocol:
            return False
        return self.ports.low <= ports.low and ports.high <= self.ports.high


@dataclass(frozen=True, slots=True)
class Exemption:
    reason: str
    expires: dt.date
    controls: frozenset[str] | None = None
    security_group: str | None = None
    vpc: str | None = None
    tag_key: str | None = None
    tag_value: str | None = None
    principal: str | None = None
    #: the undo's exemptions (``perimeter.core.exemptions``): the resource id (a group or VPC) ...
    resource: str | None = None
    #: ... and, for a security-group rule, its content key: only that rule is exempt
    rule: tuple[Any, ...] | None = None
    #: where it comes from: ``policy`` (this file), ``tag`` (perimeter:exempt), ``undo``
    source: str = "policy"
    #: what the label names when not a selector of the policy file
    what: str | None = None

    def applies(
        self,
        control_id: str,
        *,
        group_id: str | None,
        vpc_id: str | None,
        tags: Mapping[str, str],
        principal_arn: str | None,
        today: dt.date,
        rule_key: tuple[Any, ...] | None = None,
    ) -> bool:
        if today > self.expires:
            return False
        if self.controls is not None and control_id not in self.controls:
            return False
        if self.resource is not None and self.resource not in (group_id, vpc_id):
            return False
        if self.rule is not None and self.rule != rule_key:
            return False
        if self.security_group is not None and self.security_group != group_id:
            return False
        if self.vpc is not None and self.vpc != vpc_id:
            return False
        if self.tag_key is not None:
            if self.tag_key not in tags:
                return False
            if self.tag_value is not None and tags[self.tag_key] != self.tag_value:
                return False
        return self.principal is None or bool(
            principal_arn and fnmatch.fnmatchcase(principal_arn, self.principal)
        )

    @property
    def label(self) -> str:
        what = (
            self.what
            or self.security_group
            or self.vpc
            or (f"tag {self.tag_key}" if self.tag_key else None)
            or self.principal
            or "?"
        )
        return f"{what} until {self.expires.isoformat()}: {self.reason}"

    @property
    def rule_scoped(self) -> bool:
        return self.rule is not None


@dataclass(frozen=True, slots=True)
class Tiers:
    tag_key: str
    values: Mapping[str, frozenset[str]]

    def tier_of(self, tags: Mapping[str, str]) -> str | None:
        value = tags.get(self.tag_key)
        if value is None:
            return None
        for tier, accepted in self.values.items():
            if value in accepted:
                return tier
        return None


@dataclass(frozen=True, slots=True)
class Thresholds:
    world_max_prefix_ipv4: int = 0
    world_max_prefix_ipv6: int = 0
    enforce_min_score: int = 50
    severity: Mapping[str, int] = field(
        default_factory=lambda: {"critical": 90, "high": 70, "medium": 40, "low": 1}
    )
    #: the share of an IP version's public address space that a union of sources must cover
    #: to count as the world (README, "Exposure is the union")
    world_share: float = 0.125

    def severity_of(self, score: int) -> str:
        for label in SEVERITY_LABELS:
            if score >= self.severity[label]:
                return label.upper()
        return "INFORMATIONAL"


#: CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


@dataclass(frozen=True, slots=True)
class FlowLogPolicy:
    """Where PER-FL-1 sends the flow logs it creates (the log group and role come from the stack)."""

    destination: str = "cloud-watch-logs"
    retention_days: int = 365
    s3_bucket_arn: str | None = None
    max_aggregation_interval: int = 600
    #: Which VPCs PER-FL-1 judges on CreateVpc / DeleteFlowLogs / CreateFlowLogs:
    #: "model-vpcs" (a VPC holding a model-tier security group, or named in ``vpcs``) or
    #: "all-vpcs". A VPC a model is deployed into is always judged (ModelPosture).
    scope: str = "model-vpcs"
    vpcs: frozenset[str] = frozenset()

    def in_scope(self, vpc_id: str, model_vpcs: Collection[str]) -> bool:
        return self.scope == "all-vpcs" or vpc_id in self.vpcs or vpc_id in model_vpcs


@dataclass(frozen=True, slots=True)
class GuardrailPolicy:
    """Which serving paths PER-GR-1 requires a prompt-attack guardrail for."""

    required_for: frozenset[str] = frozenset({"bedrock"})


@dataclass(frozen=True, slots=True)
class Quarantine:
    """ENIs tagged so go to an empty quarantine group instead of the interim group."""

    enabled: bool = False
    tag_key: str = "perimeter:quarantine"
    tag_value: str | None = "true"


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """The sweep's review controls: how long a group may stay unused before PER-REV-1 reports it."""

    unused_grace_days: int = 30


@dataclass(frozen=True, slots=True)
class DefaultSgPolicy:
    quarantine: Quarantine = field(default_factory=Quarantine)


@dataclass(frozen=True, slots=True)
class Policy:
    modes: Mapping[str, str]
    public_ports: tuple[PortSpec, ...]
    public_ports_on_model_tier: bool
    trusted_cidrs: tuple[str, ...]
    high_risk_ports: tuple[PortSpec, ...]
    tiers: Tiers
    exemptions: tuple[Exemption, ...]
    thresholds: Thresholds
    dry_run: bool = False
    default_sg: DefaultSgPolicy = field(default_factory=DefaultSgPolicy)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    flow_logs: FlowLogPolicy = field(default_factory=lambda: FlowLogPolicy())
    guardrails: GuardrailPolicy = field(default_factory=lambda: GuardrailPolicy())
    review: ReviewPolicy = field(default_factory=lambda: ReviewPolicy())
    #: organization mode: partial policy documents merged over this one, per account and per OU
    overrides_accounts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    overrides_ous: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    _scoped: dict[tuple[str, tuple[str, ...]], Policy] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def has_overrides(self) -> bool:
        return bool(self.overrides_accounts or self.overrides_ous)

    def for_account(self, account: str, ous: Sequence[str] = ()) -> Policy:
        """The policy for one member account: the OUs' overrides merged over this policy, root
        first (``ous`` is the path from the root down), then the account's own; mappings merge
        key by key, any other value (lists included) replaces the base's. Cached per scope."""
        ous = tuple(o for o in ous if o in self.overrides_ous)
        key = (account, ous)
        hit = self._scoped.get(key)
        if hit is not None:
            return hit
        layers = [self.overrides_ous[o] for o in ous]
        if account in self.overrides_accounts:
            layers.append(self.overrides_accounts[account])
        if not layers:
            scoped = self
        else:
            doc: Mapping[str, Any] = _base_doc(self.raw)
            for layer in layers:
                doc = merge_docs(doc, layer)
            scoped = parse_policy(doc).with_dry_run(self.dry_run)
        self._scoped[key] = scoped
        return scoped

    def mode(self, control_id: str) -> str:
        """The effective mode: dry-run turns every ``enforce`` into ``detect``."""
        mode = self.modes.get(control_id, "off")
        if self.dry_run and mode == "enforce":
            return "detect"
        return mode

    def with_dry_run(self, dry_run: bool) -> Policy:
        return replace(self, dry_run=self.dry_run or dry_run)

    def exemption_for(
        self,
        control_id: str,
        *,
        group_id: str | None = None,
        vpc_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        principal_arn: str | None = None,
        today: dt.date | None = None,
        extra: Sequence[Exemption] = (),
        rule_key: tuple[Any, ...] | None = None,
    ) -> Exemption | None:
        """The exemption that protects this (control, resource[, rule]), from any of the three
        sources, in this order: the policy file, the resource's ``perimeter:exempt`` tag
        (``tags``), the undo's exemptions (``extra``, read from DynamoDB by the caller). Expired
        ones and malformed tags protect nothing."""
        from perimeter.core.exemptions import from_tags

        day = today or dt.datetime.now(dt.UTC).date()
        tag = from_tags(tags, day)
        candidates = (*self.exemptions, *((tag,) if tag else ()), *extra)
        for ex in candidates:
            if ex.applies(
                control_id,
                group_id=group_id,
                vpc_id=vpc_id,
                tags=tags or {},
                principal_arn=principal_arn,
                today=day,
                rule_key=rule_key,
            ):
                return ex
        return None


# --- parsing ----------------------------------------------------------------------------


def _fail(path: str, message: str) -> PolicyError:
    return PolicyError(f"{path}: {message}")


def _mapping(value: Any, path: str, allowed: Sequence[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a mapping, got {type(value).__name__}")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                raise _fail(
                    f"{path}.{key}" if path else str(key), f"unknown field (allowed: {', '.join(allowed)})"
                )
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"must be a list, got {type(value).__name__}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "must be true or false")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise _fail(path, f"must be an integer {low}-{high}")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "must be a non-empty string")
    return value


def _port_specs(value: Any, path: str) -> tuple[PortSpec, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        m = _mapping(item, p, ("protocol", "ports"))
        protocol = normalize_protocol(_str(m.get("protocol"), f"{p}.protocol"))
        if protocol not in ("tcp", "udp"):
            raise _fail(f"{p}.protocol", "must be tcp or udp")
        try:
            ports = parse_port_spec(m.get("ports", ""))
        except ValueError as exc:
            raise _fail(f"{p}.ports", str(exc)) from exc
        out.append(PortSpec(protocol, ports))
    return tuple(out)


def _date(value: Any, path: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(path, "must be a date YYYY-MM-DD")


def _exemptions(value: Any, path: str) -> tuple[Exemption, ...]:
    out = []
    fields = ("reason", "expires", "controls", "security_group", "vpc", "tag", "principal")
    for i, item in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        m = _mapping(item, p, fields)
        reason = _str(m.get("reason"), f"{p}.reason")
        if "expires" not in m:
            raise _fail(f"{p}.expires", "is required: every exemption ends")
        expires = _date(m["expires"], f"{p}.expires")
        controls = None
        if "controls" in m:
            controls = frozenset(
                _control_id(c, f"{p}.controls") for c in _list(m["controls"], f"{p}.controls")
            )
        tag_key = tag_value = None
        if "tag" in m:
            t = _mapping(m["tag"], f"{p}.tag", ("key", "value"))
            tag_key = _str(t.get("key"), f"{p}.tag.key")
            tag_value = str(t["value"]) if "value" in t else None
        selectors = [k for k in ("security_group", "vpc", "tag", "principal") if k in m]
        if not selectors:
            raise _fail(p, "needs one of security_group, vpc, tag, principal")
        out.append(
            Exemption(
                reason=reason,
                expires=expires,
                controls=controls,
                security_group=(
                    _str(m["security_group"], f"{p}.security_group") if "security_group" in m else None
                ),
                vpc=_str(m["vpc"], f"{p}.vpc") if "vpc" in m else None,
                tag_key=tag_key,
                tag_value=tag_value,
                principal=_str(m["principal"], f"{p}.principal") if "principal" in m else None,
            )
        )
    return tuple(out)


def _control_id(value: Any, path: str) -> str:
    if value not in CONTROL_IDS:
        raise _fail(path, f"unknown control {value!r}")
    return str(value)


def _thresholds(value: Any, path: str) -> Thresholds:
    m = _mapping(value, path, ("world_max_prefix", "world_share", "enforce_min_score", "severity"))
    t = Thresholds()
    v4, v6 = t.world_max_prefix_ipv4, t.world_max_prefix_ipv6
    if "world_max_prefix" in m:
        w = _mapping(m["world_max_prefix"], f"{path}.world_max_prefix", ("ipv4", "ipv6"))
        v4 = _int(w.get("ipv4", 0), f"{path}.world_max_prefix.ipv4", 0, 32)
        v6 = _int(w.get("ipv6", 0), f"{path}.world_max_prefix.ipv6", 0, 128)
    enforce_min = _int(m.get("enforce_min_score", t.enforce_min_score), f"{path}.enforce_min_score", 0, 100)
    severity = dict(t.severity)
    if "severity" in m:
        s = _mapping(m["severity"], f"{path}.severity", SEVERITY_LABELS)
        for label in SEVERITY_LABELS:
            if label in s:
                severity[label] = _int(s[label], f"{path}.severity.{label}", 0, 100)
        ordered = [severity[label] for label in SEVERITY_LABELS]
        if ordered != sorted(ordered, reverse=True):
            raise _fail(f"{path}.severity", "must satisfy critical >= high >= medium >= low")
    share = m.get("world_share", t.world_share)
    if isinstance(share, bool) or not isinstance(share, int | float) or not (0 < share <= 1):
        raise _fail(f"{path}.world_share", "must be a number greater than 0 and at most 1")
    return Thresholds(v4, v6, enforce_min, severity, float(share))


def _tiers(value: Any, path: str) -> Tiers:
    m = _mapping(value, path, ("tag_key", "values"))
    tag_key = _str(m.get("tag_key"), f"{path}.tag_key")
    values = _mapping(m.get("values"), f"{path}.values")
    if "model" not in values:
        raise _fail(f"{path}.values.model", "is required: it names the model tier")
    parsed = {}
    for tier, accepted in values.items():
        lst = _list(accepted, f"{path}.values.{tier}")
        parsed[str(tier)] = frozenset(_str(v, f"{path}.values.{tier}[{i}]") for i, v in enumerate(lst))
    return Tiers(tag_key, parsed)


TOP_LEVEL = (
    "version",
    "dry_run",
    "controls",
    "public_ports",
    "public_ports_on_model_tier",
    "trusted_cidrs",
    "high_risk_ports",
    "tiers",
    "exemptions",
    "thresholds",
    "flow_logs",
    "guardrails",
    "default_sg",
    "review",
    "overrides",
)


def _default_sg(value: Any, path: str) -> DefaultSgPolicy:
    m = _mapping(value, path, ("quarantine",))
    if "quarantine" not in m:
        return DefaultSgPolicy()
    q = _mapping(m["quarantine"], f"{path}.quarantine", ("enabled", "tag"))
    base = Quarantine()
    key, val = base.tag_key, base.tag_value
    if "tag" in q:
        t = _mapping(q["tag"], f"{path}.quarantine.tag", ("key", "value"))
        key = _str(t.get("key"), f"{path}.quarantine.tag.key")
        val = _str(str(t["value"]), f"{path}.quarantine.tag.value") if "value" in t else None
    enabled = _bool(q.get("enabled", False), f"{path}.quarantine.enabled")
    return DefaultSgPolicy(Quarantine(enabled, key, val))


def _flow_logs(value: Any, path: str) -> FlowLogPolicy:
    m = _mapping(
        value,
        path,
        ("destination", "retention_days", "s3_bucket_arn", "max_aggregation_interval", "scope", "vpcs"),
    )
    d = FlowLogPolicy()
    dest = m.get("destination", d.destination)
    if dest not in ("cloud-watch-logs", "s3"):
        raise _fail(f"{path}.destination", "must be cloud-watch-logs or s3")
    days = m.get("retention_days", d.retention_days)
    if isinstance(days, bool) or days not in LOG_RETENTION_DAYS:
        raise _fail(f"{path}.retention_days", f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    bucket = None
    if "s3_bucket_arn" in m:
        bucket = _str(m["s3_bucket_arn"], f"{path}.s3_bucket_arn")
        if not bucket.startswith("arn:") or ":s3:::" not in bucket:
            raise _fail(f"{path}.s3_bucket_arn", "must be an S3 bucket ARN (arn:aws:s3:::bucket)")
    if dest == "s3" and bucket is None:
        raise _fail(f"{path}.s3_bucket_arn", "is required when destination is s3")
    interval = m.get("max_aggregation_interval", d.max_aggregation_interval)
    if interval not in (60, 600) or isinstance(interval, bool):
        raise _fail(f"{path}.max_aggregation_interval", "must be 60 or 600")
    scope = m.get("scope", d.scope)
    if scope not in ("model-vpcs", "all-vpcs"):
        raise _fail(f"{path}.scope", "must be model-vpcs or all-vpcs")
    vpcs = _list(m.get("vpcs", []), f"{path}.vpcs")
    for i, vpc in enumerate(vpcs):
        if not isinstance(vpc, str) or not vpc.startswith("vpc-"):
            raise _fail(f"{path}.vpcs[{i}]", "must be a VPC id (vpc-...)")
    return FlowLogPolicy(dest, days, bucket, interval, scope, frozenset(vpcs))


def _guardrails(value: Any, path: str) -> GuardrailPolicy:
    m = _mapping(value, path, ("required_for",))
    kinds = _list(m.get("required_for", ["bedrock"]), f"{path}.required_for")
    for i, kind in enumerate(kinds):
        if kind not in ("bedrock", "sagemaker"):
            raise _fail(f"{path}.required_for[{i}]", "must be bedrock or sagemaker")
    return GuardrailPolicy(frozenset(kinds))


def _review(value: Any, path: str) -> ReviewPolicy:
    m = _mapping(value, path, ("unused_grace_days",))
    days = _int(
        m.get("unused_grace_days", ReviewPolicy().unused_grace_days), f"{path}.unused_grace_days", 0, 3650
    )
    return ReviewPolicy(days)


ACCOUNT_ID = re.compile(r"^\d{12}$")
OU_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$")


def merge_docs(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``: mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        cur = out.get(key)
        if isinstance(cur, Mapping) and isinstance(value, Mapping):
            out[key] = merge_docs(cur, value)
        else:
            out[key] = value
    return out


def _base_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "overrides"}


def _overrides(
    value: Any, base: Mapping[str, Any]
) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
    """``overrides: {accounts: {<id>: <partial policy>}, ous: {<ou id>: <partial policy>}}``.
    Each entry, merged over the base, must be a valid policy itself: a bad field is named by
    its full path (``overrides.accounts.111122223333.thresholds.enforce_min_score: ...``)."""
    m = _mapping(value or {}, "overrides", ("accounts", "ous"))
    out: list[dict[str, Mapping[str, Any]]] = []
    for kind, pattern, what in (
        ("accounts", ACCOUNT_ID, "a 12-digit account id"),
        ("ous", OU_ID, "an organizational unit id (ou-...)"),
    ):
        entries: dict[str, Mapping[str, Any]] = {}
        for key, doc in _mapping(m.get(kind, {}) or {}, f"overrides.{kind}").items():
            path = f"overrides.{kind}.{key}"
            if not isinstance(key, str) or not pattern.match(key):
                raise _fail(path, f"must be {what}")
            part = _mapping(doc, path)
            for banned in ("version", "overrides"):
                if banned in part:
                    raise _fail(f"{path}.{banned}", "cannot be overridden")
            try:
                parse_policy(merge_docs(_base_doc(base), part))
            except PolicyError as exc:
                raise PolicyError(f"{path}.{exc}") from exc
            entries[key] = part
        out.append(entries)
    return out[0], out[1]


def parse_policy(doc: Any) -> Policy:
    """Validate a policy document (already loaded from YAML) and build a ``Policy``.

    Raises:
        PolicyError: the first invalid field, by path.
    """
    m = _mapping(doc, "policy")
    _mapping(m, "", TOP_LEVEL)  # an unknown top-level field is named by itself, like every path
    version = m.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version != 1:
        raise _fail("version", "must be 1")
    modes: dict[str, str] = {}
    for cid, spec in _mapping(m.get("controls", {}), "controls").items():
        _control_id(cid, f"controls.{cid}")
        s = _mapping(spec, f"controls.{cid}", ("mode",))
        mode = s.get("mode")
        if mode not in MODES:
            raise _fail(f"controls.{cid}.mode", f"must be one of {', '.join(MODES)}")
        modes[cid] = mode
    trusted = []
    for i, cidr in enumerate(_list(m.get("trusted_cidrs", []), "trusted_cidrs")):
        try:
            trusted.append(str(parse_cidr(_str(cidr, f"trusted_cidrs[{i}]"))))
        except CidrError as exc:
            raise _fail(f"trusted_cidrs[{i}]", str(exc)) from exc
        if parse_cidr(cidr).prefixlen == 0:
            raise _fail(f"trusted_cidrs[{i}]", "the whole internet cannot be trusted")
    if "tiers" not in m:
        raise _fail("tiers", "is required")
    return Policy(
        modes=modes,
        public_ports=_port_specs(m.get("public_ports", []), "public_ports"),
        public_ports_on_model_tier=_bool(
            m.get("public_ports_on_model_tier", False), "public_ports_on_model_tier"
        ),
        trusted_cidrs=tuple(trusted),
        high_risk_ports=_port_specs(m.get("high_risk_ports", []), "high_risk_ports"),
        tiers=_tiers(m["tiers"], "tiers"),
        exemptions=_exemptions(m.get("exemptions", []) or [], "exemptions"),
        thresholds=_thresholds(m.get("thresholds", {}), "thresholds"),
        dry_run=_bool(m.get("dry_run", False), "dry_run"),
        default_sg=_default_sg(m.get("default_sg", {}) or {}, "default_sg"),
        raw=m,
        flow_logs=_flow_logs(m.get("flow_logs", {}) or {}, "flow_logs"),
        guardrails=_guardrails(m.get("guardrails", {}) or {}, "guardrails"),
        review=_review(m.get("review", {}) or {}, "review"),
        **_overrides_kwargs(m),
    )


def _overrides_kwargs(m: Mapping[str, Any]) -> dict[str, Any]:
    if not m.get("overrides"):
        return {}
    accounts, ous = _overrides(m["overrides"], m)
    return {"overrides_accounts": accounts, "overrides_ous": ous}


def load_policy_text(text: str) -> Policy:
    """Parse and validate a YAML policy text."""
    import yaml  # deferred: only loaded once per container, on the policy path

    # libyaml's parser when the wheel has it (the same safe subset, several times faster: the
    # policy is parsed in every cold start).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy: not valid YAML: {exc}") from exc
    return parse_policy(doc)


def default_policy_text() -> str:
    return resources.files(__package__).joinpath("default.yaml").read_text(encoding="utf-8")


def load_default_policy() -> Policy:
    return load_policy_text(default_policy_text())
