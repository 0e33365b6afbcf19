"""Default security groups and tiers: what an event points at, and the migration plan (pure).

The usual remediation for a default SG with rules (the AWS runbook, ASR EC2.2) strips the
rules, and whatever is still attached loses its traffic. Perimeter plans the migration instead:
every dependant ENI of the VPC's default SG gets an *interim* group holding the default SG's
rules (self-references rewritten to the interim group itself, so dependants keep talking to each
other) minus every rule the policy forbids; only once nobody depends on the default SG are its
rules revoked. Where a dependant cannot be moved in place (an ENI another AWS service owns, a
SageMaker model's VPC config), nothing is moved and the finding carries the exact fix: moving
the others would cut them off from the one left behind.

Everything here is data in, data out: the service reads AWS, this module decides, the adapter
writes. Controls PER-DSG-1, PER-DSG-2, PER-TIER-1 and PER-SG-5 are registered here.

Policy snippet::

    controls:
      PER-DSG-1: {mode: enforce}
      PER-DSG-2: {mode: enforce}
      PER-TIER-1: {mode: detect}
      PER-SG-5: {mode: detect}
    default_sg:
      quarantine: {enabled: false, tag: {key: "perimeter:quarantine", value: "true"}}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from perimeter.core.arns import arn, marketplace_endpoint_arn
from perimeter.core.controls import REGISTRY, SG_CONTROLS, Control, register
from perimeter.core.events import ApiCall, MalformedEvent, ec2_id, items, unwrap
from perimeter.core.netmath import parse_cidr, within_any
from perimeter.core.rules import Rule
from perimeter.policy import Policy
from perimeter.security_groups.context import GroupContext

#: Stands for "the interim group itself" until the group exists (and in the name digest).
SELF = "<self>"
INTERIM_PREFIX = "perimeter-interim-"
QUARANTINE_NAME = "perimeter-quarantine"
MANAGED_TAG = "perimeter:managed"
#: ENI types whose security groups the ENI's owner (this account) may change in place.
MOVABLE_TYPES = frozenset({"interface", "efa", "efa-only", "trunk", ""})
OTHER_TIERS = frozenset({"database", "cache", "app"})


# --- controls ---------------------------------------------------------------------------


def _on_default(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    """Any rule at all on a default SG violates PER-DSG-1."""
    return ctx.is_default


def _never(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    """Attachment controls judge ENIs, not rules (see ``plan_migration`` / ``tier_findings``)."""
    return False


def _tier_by_cidr(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    """An ingress CIDR inside the VPC on a tiered group: a tier reached by address range
    where a security-group reference should name exactly who may connect."""
    if rule.egress or not rule.cidr or ctx.tier(policy) is None or not ctx.vpc_cidrs:
        return False
    return parse_cidr(rule.cidr).prefixlen > 0 and within_any(rule.cidr, ctx.vpc_cidrs)


# Another issue's module may register the same control (PER-TIER-1 for models): whoever is
# imported first registers it, the other reuses it (``register`` refuses twins).
_NET = ("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",)
_DSG_URL = "https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html"

DSG1 = REGISTRY.get("PER-DSG-1") or register(
    Control(
        id="PER-DSG-1",
        practice=3,
        title="Default security group has rules",
        description=(
            "The VPC's default security group carries rules. Everything launched without a "
            "security group lands in it and silently gets that access."
        ),
        remediation=(
            "Move every ENI off the default group (Perimeter gives them an interim group with "
            "the same rules minus the forbidden ones), then remove the default group's rules."
        ),
        types=_NET,
        permissions=("ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"),
        matches=_on_default,
        remediation_url=_DSG_URL,
    )
)
DSG2 = REGISTRY.get("PER-DSG-2") or register(
    Control(
        id="PER-DSG-2",
        practice=3,
        title="Resource attached to a default security group",
        description="An ENI, instance or model uses the VPC's default security group.",
        remediation=(
            "Attach the resource's tier security group (or Perimeter's interim group) and "
            "detach the default group."
        ),
        types=_NET,
        permissions=(
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:ModifyNetworkInterfaceAttribute",
        ),
        matches=_never,
        remediation_url=_DSG_URL,
    )
)
TIER1 = REGISTRY.get("PER-TIER-1") or register(
    Control(
        id="PER-TIER-1",
        practice=1,
        title="Model-tier security group shared with another tier",
        description=(
            "A model-tier security group is attached to an ENI of another tier (database, "
            "cache, application), so both tiers get each other's access."
        ),
        remediation="Give each tier its own security group and allow traffic between tiers by SG reference.",
        types=_NET,
        permissions=(),
        matches=_never,
    )
)
SG5 = REGISTRY.get("PER-SG-5") or register(
    Control(
        id="PER-SG-5",
        practice=1,
        title="Tier reached by CIDR instead of a security-group reference",
        description=(
            "A tiered security group admits a CIDR inside the VPC: every ENI in that range, "
            "of any tier, may connect."
        ),
        remediation="Replace the CIDR with a reference to the calling tier's security group.",
        types=_NET,
        permissions=(),
        matches=_tier_by_cidr,
    )
)


# --- what an event points at ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManagedResource:
    """A SageMaker or Bedrock resource whose VPC config names security groups."""

    type: str
    name: str
    arn: str
    group_ids: tuple[str, ...]
    subnet_ids: tuple[str, ...]

    @property
    def asff_type(self) -> str:
        """The Security Hub resource type: ASFF has one for notebook instances only; a model
        or a Marketplace endpoint is ``Other`` (its kind goes in the details)."""
        return ASFF_TYPES.get(self.type, "Other")


#: Our resource kinds that ASFF knows by the same name (Security Hub's ResourceDetails).
ASFF_TYPES = {"AwsSageMakerNotebookInstance": "AwsSageMakerNotebookInstance"}


@dataclass(frozen=True, slots=True)
class Subjects:
    """What one event points at. ``kind``: ``enis`` (attachment changed), ``endpoint`` (a VPC
    endpoint's groups changed: its ENIs, read from AWS), ``group`` (rules added to a group),
    ``managed`` (a model's VPC config) or ``none`` (nothing to judge)."""

    kind: str
    eni_ids: tuple[str, ...] = ()
    endpoint_ids: tuple[str, ...] = ()
    instance_ids: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    managed: ManagedResource | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        # every id here came from the event and goes into EC2 filters: checked once, here
        for ids, prefix in (
            (self.eni_ids, "eni"),
            (self.endpoint_ids, "vpce"),
            (self.instance_ids, "i"),
            (self.group_ids, "sg"),
        ):
            for value in ids:
                ec2_id(value, prefix, f"{self.kind} subjects")


def _get(m: Any, *names: str) -> Any:
    if not isinstance(m, Mapping):
        return None
    for n in names:
        if m.get(n) not in (None, "", {}):
            return m[n]
    return None


def _ids(value: Any, *keys: str) -> list[str]:
    """Ids from ``{"items": [{"groupId": ..}]}``, a list of strings, or a single string."""
    out = []
    for entry in items(value):
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, Mapping):
            found = _get(entry, *keys)
            if isinstance(found, str):
                out.append(found)
    return out


def _run_instances(call: ApiCall) -> Subjects:
    enis: list[str] = []
    instances: list[str] = []
    for inst in items(_get(call.response, "instancesSet")):
        if not isinstance(inst, Mapping):
            continue
        if inst.get("instanceId"):
            instances.append(str(inst["instanceId"]))
        enis.extend(_ids(inst.get("networkInterfaceSet"), "networkInterfaceId"))
    if not enis and not instances:
        return Subjects("none", reason="RunInstances record names no instance")
    return Subjects("enis", eni_ids=tuple(enis), instance_ids=tuple(instances))


def _create_eni(call: ApiCall) -> Subjects:
    eni = _get(unwrap(call.response).get("networkInterface") or {}, "networkInterfaceId")
    if not eni:
        raise MalformedEvent(
            "CreateNetworkInterface: responseElements lacks networkInterface.networkInterfaceId"
        )
    return Subjects("enis", eni_ids=(str(eni),))


def _modify_eni(call: ApiCall) -> Subjects:
    req = unwrap(call.request.get("ModifyNetworkInterfaceAttributeRequest", call.request))
    eni = _get(req, "networkInterfaceId", "NetworkInterfaceId")
    if not eni:
        raise MalformedEvent("ModifyNetworkInterfaceAttribute: request lacks networkInterfaceId")
    if _get(req, "groupSet", "SecurityGroupId", "Groups") is None:
        return Subjects("none", reason="not a security-group change")
    return Subjects("enis", eni_ids=(str(eni),))


def _modify_instance(call: ApiCall) -> Subjects:
    req = call.request
    instance = _get(req, "instanceId")
    if not instance:
        raise MalformedEvent("ModifyInstanceAttribute: request lacks instanceId")
    if _get(req, "groupSet") is None and req.get("attribute") != "groupSet":
        return Subjects("none", reason="not a security-group change")
    return Subjects("enis", instance_ids=(str(instance),))


def _authorize(call: ApiCall) -> Subjects:
    gid = _get(call.request, "groupId")
    if not gid:
        return Subjects("none", reason="request names the group by name only (EC2-Classic)")
    return Subjects("group", group_ids=(str(gid),))


def _modify_sg_rules(call: ApiCall) -> Subjects:
    """ModifySecurityGroupRules on a default group changes its rules like an Authorize does."""
    req = unwrap(call.request.get("ModifySecurityGroupRulesRequest", call.request))
    gid = _get(req, "GroupId", "groupId")
    if not gid:
        raise MalformedEvent("ModifySecurityGroupRules: request lacks GroupId")
    return Subjects("group", group_ids=(str(gid),))


def _set(value: Any) -> list[Any]:
    """A set in the wrapped (newer EC2 API) form: ``{"item": x}`` or ``{"item": [x, y]}``."""
    if isinstance(value, Mapping) and "item" in value:
        inner = value["item"]
        return list(inner) if isinstance(inner, list) else [inner]
    return items(value)


def _create_vpc_endpoint(call: ApiCall) -> Subjects:
    """An interface endpoint's ENIs carry the groups it names, or the VPC's default group when
    it names none: judged like any other ENI on a default group (the fix is the endpoint's)."""
    resp = unwrap(call.response.get("CreateVpcEndpointResponse", call.response))
    endpoint = _get(resp, "vpcEndpoint", "VpcEndpoint") or {}
    kind = str(_get(endpoint, "vpcEndpointType", "VpcEndpointType") or "")
    enis = _ids(_set(_get(endpoint, "networkInterfaceIdSet", "NetworkInterfaceIds")), "networkInterfaceId")
    if kind.lower() not in ("interface", "gatewayloadbalancer") or not enis:
        return Subjects("none", reason=f"{kind or 'a'} endpoint without network interfaces")
    return Subjects("enis", eni_ids=tuple(enis))


def _modify_vpc_endpoint(call: ApiCall) -> Subjects:
    """ModifyVpcEndpoint adding security groups: the endpoint's ENIs now carry them (a default
    group among them is PER-DSG-2, as on CreateVpcEndpoint). The record names the endpoint, not
    its ENIs: they are read from AWS. A call that adds no group changes no ENI's groups."""
    req = unwrap(call.request.get("ModifyVpcEndpointRequest", call.request))
    endpoint = _get(req, "VpcEndpointId", "vpcEndpointId")
    if not endpoint:
        raise MalformedEvent("ModifyVpcEndpoint: request lacks VpcEndpointId")
    added = _ids(_set(_get(req, "AddSecurityGroupId", "AddSecurityGroupIds")), "groupId")
    if not added:
        return Subjects("none", reason="no security group added to the endpoint")
    return Subjects("endpoint", endpoint_ids=(str(endpoint),), group_ids=tuple(added))


def _sagemaker_model(call: ApiCall) -> Subjects:
    req = call.request
    vpc = _get(req, "vpcConfig", "VpcConfig")
    name = str(_get(req, "modelName", "ModelName") or "?")
    if not vpc:
        return Subjects("none", reason="model has no VPC config")
    return _managed(
        "AwsSageMakerModel",
        name,
        str(_get(call.response, "modelArn") or arn("sagemaker", call.region, call.account, f"model/{name}")),
        _ids(_get(vpc, "securityGroupIds", "SecurityGroupIds"), "groupId"),
        _ids(_get(vpc, "subnets", "Subnets"), "subnetId"),
    )


def _notebook(call: ApiCall) -> Subjects:
    req = call.request
    name = str(_get(req, "notebookInstanceName", "NotebookInstanceName") or "?")
    nb_arn = _get(call.response, "notebookInstanceArn") or (
        arn("sagemaker", call.region, call.account, f"notebook-instance/{name}")
    )
    groups = _ids(_get(req, "securityGroupIds", "SecurityGroupIds"), "groupId")
    subnet = _get(req, "subnetId", "SubnetId")
    if not groups and not subnet:
        return Subjects("none", reason="notebook instance has no VPC config")
    subnets = [str(subnet)] if subnet else []
    return _managed("AwsSageMakerNotebookInstance", name, str(nb_arn), groups, subnets)


def _marketplace(call: ApiCall) -> Subjects:
    req = call.request
    cfg = _get(_get(req, "endpointConfig", "EndpointConfig"), "sageMaker", "SageMaker")
    vpc = _get(cfg, "vpc", "Vpc")
    name = str(_get(req, "endpointName", "EndpointName") or "?")
    if not vpc:
        return Subjects("none", reason="endpoint has no VPC config")
    endpoint = _get(call.response, "marketplaceModelEndpoint") or {}
    endpoint_arn = _get(endpoint, "endpointArn") or marketplace_endpoint_arn(call.region, call.account, name)
    return _managed(
        "AwsBedrockMarketplaceModelEndpoint",
        name,
        str(endpoint_arn),
        _ids(_get(vpc, "securityGroupIds", "SecurityGroupIds"), "groupId"),
        _ids(_get(vpc, "subnetIds", "SubnetIds"), "subnetId"),
    )


def _managed(rtype: str, name: str, arn: str, groups: list[str], subnets: list[str]) -> Subjects:
    if not groups:
        # No group named: AWS attaches the VPC's default group.
        return Subjects(
            "managed",
            managed=ManagedResource(rtype, name, arn, (), tuple(subnets)),
            reason="no security group named: the VPC's default group applies",
        )
    return Subjects(
        "managed",
        group_ids=tuple(groups),
        managed=ManagedResource(rtype, name, arn, tuple(groups), tuple(subnets)),
    )


EXTRACTORS = {
    "RunInstances": _run_instances,
    "CreateNetworkInterface": _create_eni,
    "ModifyNetworkInterfaceAttribute": _modify_eni,
    "ModifyInstanceAttribute": _modify_instance,
    "AuthorizeSecurityGroupIngress": _authorize,
    "AuthorizeSecurityGroupEgress": _authorize,
    # A person's fix: the group's PER-DSG-1 / PER-SG-5 findings resolve (never an EC2 write).
    "RevokeSecurityGroupIngress": _authorize,
    "RevokeSecurityGroupEgress": _authorize,
    "ModifySecurityGroupRules": _modify_sg_rules,
    "CreateVpcEndpoint": _create_vpc_endpoint,
    "ModifyVpcEndpoint": _modify_vpc_endpoint,
    "CreateModel": _sagemaker_model,
    "CreateNotebookInstance": _notebook,
    "CreateMarketplaceModelEndpoint": _marketplace,
}


def extract_subjects(call: ApiCall) -> Subjects:
    """What an event points at.

    Raises:
        MalformedEvent: an event this module does not handle, or a record lacking the ids
            its kind always carries.
    """
    fn = EXTRACTORS.get(call.event_name)
    if fn is None:
        raise MalformedEvent(f"no default-SG extractor for event {call.event_name!r}")
    return fn(call)


# --- what AWS holds ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eni:
    eni_id: str
    vpc_id: str
    groups: tuple[tuple[str, str], ...]  # (id, name), in AWS's order
    requester_managed: bool = False
    requester_id: str | None = None
    interface_type: str = "interface"
    description: str = ""
    instance_id: str | None = None
    subnet_id: str | None = None
    private_ip: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def group_ids(self) -> tuple[str, ...]:
        return tuple(g for g, _ in self.groups)

    @property
    def default_group_id(self) -> str | None:
        return next((g for g, n in self.groups if n == "default"), None)

    @property
    def movable(self) -> bool:
        return not self.requester_managed and (self.interface_type or "") in MOVABLE_TYPES

    @property
    def label(self) -> str:
        owner = f" of {self.instance_id}" if self.instance_id else ""
        return f"{self.eni_id}{owner}"


def eni_from_api(raw: Mapping[str, Any]) -> Eni:
    return Eni(
        eni_id=str(raw["NetworkInterfaceId"]),
        vpc_id=str(raw.get("VpcId", "")),
        groups=tuple((str(g["GroupId"]), str(g.get("GroupName", ""))) for g in raw.get("Groups", [])),
        requester_managed=bool(raw.get("RequesterManaged", False)),
        requester_id=raw.get("RequesterId"),
        interface_type=str(raw.get("InterfaceType") or "interface"),
        description=str(raw.get("Description") or ""),
        instance_id=(raw.get("Attachment") or {}).get("InstanceId"),
        subnet_id=raw.get("SubnetId"),
        private_ip=raw.get("PrivateIpAddress"),
        tags={t["Key"]: t.get("Value", "") for t in raw.get("TagSet", []) or []},
    )


@dataclass(frozen=True, slots=True)
class DefaultGroup:
    group_id: str
    vpc_id: str
    rules: tuple[Rule, ...]  # with rule ids
    tags: Mapping[str, str] = field(default_factory=dict)


# --- the interim group ------------------------------------------------------------------


def _to_self(rule: Rule, default_id: str) -> Rule:
    ref = SELF if rule.referenced_group_id == default_id else rule.referenced_group_id
    return replace(rule, group_id=SELF, referenced_group_id=ref, rule_id=None)


def interim_rules(
    default: DefaultGroup, policy: Policy, ctx: GroupContext, controls: Sequence[Control] = SG_CONTROLS
) -> tuple[tuple[Rule, ...], tuple[tuple[Rule, tuple[str, ...]], ...]]:
    """The default group's rules as the interim group will hold them (``group_id`` and
    self-references are ``SELF``), and the rules left out with the controls that forbid them.
    Perimeter never creates a violation of its own: any SG control not ``off`` that matches
    drops the rule, whatever its mode."""
    kept: dict[Any, Rule] = {}
    dropped: list[tuple[Rule, tuple[str, ...]]] = []
    for rule in default.rules:
        r = _to_self(rule, default.group_id)
        hits = tuple(c.id for c in controls if policy.mode(c.id) != "off" and c.matches(r, ctx, policy))
        if hits:
            dropped.append((r, hits))
        else:
            kept.setdefault(r.key, r)
    return tuple(sorted(kept.values(), key=lambda r: repr(r.key))), tuple(dropped)


def interim_name(rules: Iterable[Rule]) -> str:
    """Same rule set, same group (a retry finds what the first run created); a different set
    gets a new group, so a later migration never widens what earlier movers were given."""
    text = "\n".join(sorted(repr(r.key) for r in rules))
    return INTERIM_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:12]


def materialize(rule: Rule, group_id: str) -> Rule:
    """A ``SELF`` rule bound to the real interim group."""
    ref = group_id if rule.referenced_group_id == SELF else rule.referenced_group_id
    return replace(rule, group_id=group_id, referenced_group_id=ref)


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    eni_id: str
    instance_id: str | None
    before: tuple[str, ...]
    target: str  # "interim" | "quarantine"

    def with_target(self, target_id: str, default_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The two group lists the ENI goes through: the target added, then default removed.
        Both are non-empty by construction: an ENI never loses its last group."""
        added = tuple(dict.fromkeys((*self.before, target_id)))
        final = tuple(g for g in added if g != default_id)
        return added, final


@dataclass(frozen=True, slots=True)
class Blocker:
    eni: Eni
    fix: str


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    vpc_id: str
    default: DefaultGroup
    dependants: tuple[Eni, ...]
    interim_rules: tuple[Rule, ...]
    dropped: tuple[tuple[Rule, tuple[str, ...]], ...]
    interim_name: str
    moves: tuple[Move, ...]
    blockers: tuple[Blocker, ...]
    revoke: tuple[Rule, ...]
    dsg1_mode: str
    dsg2_mode: str
    why_not: tuple[str, ...] = ()

    @property
    def dsg1_violated(self) -> bool:
        return self.dsg1_mode != "off" and bool(self.default.rules)

    @property
    def dsg2_violated(self) -> bool:
        return self.dsg2_mode != "off" and bool(self.dependants)

    @property
    def violating(self) -> bool:
        return self.dsg1_violated or self.dsg2_violated

    @property
    def acts(self) -> bool:
        return bool(self.moves or self.revoke)

    @property
    def needs_quarantine(self) -> bool:
        return any(m.target == "quarantine" for m in self.moves)


def _quarantined(eni: Eni, policy: Policy) -> bool:
    q = policy.default_sg.quarantine
    if not q.enabled or q.tag_key not in eni.tags:
        return False
    return q.tag_value is None or eni.tags[q.tag_key] == q.tag_value


def plan_migration(
    default: DefaultGroup,
    dependants: Sequence[Eni],
    policy: Policy,
    ctx: GroupContext,
    *,
    exempt_dsg1: str | None = None,
    exempt_dsg2: str | None = None,
    referenced_by: Sequence[Rule] = (),
) -> MigrationPlan:
    """Decide what enforce may do for one VPC: move which ENIs where, revoke which rules.

    Moves happen only when every dependant can be moved (one left behind on the default
    group would lose its traffic to the others) and no other group's rule names the default
    group (its members would lose that traffic once moved); rules are revoked only when no
    dependant is left on the group afterwards."""
    kept, dropped = interim_rules(default, policy, ctx)
    name = interim_name(kept)
    m1, m2 = policy.mode("PER-DSG-1"), policy.mode("PER-DSG-2")
    deps = tuple(d for d in dependants if default.group_id in d.group_ids)
    blockers = tuple(Blocker(d, fix_for_eni(d, default.group_id, name)) for d in deps if not d.movable)
    why: list[str] = []
    can_move = bool(deps)
    if blockers:
        why.append(
            f"{len(blockers)} dependant(s) cannot be moved in place "
            f"({', '.join(b.eni.eni_id for b in blockers)}): nothing moved, so nobody is cut off"
        )
        can_move = False
    if deps and referenced_by:
        listed = "; ".join(f"{r.group_id}: {r.describe()}" for r in referenced_by[:5])
        more = f" and {len(referenced_by) - 5} more" if len(referenced_by) > 5 else ""
        why.append(
            f"{len(referenced_by)} rule(s) of other groups name default SG {default.group_id} "
            f"({listed}{more}): its dependants would lose that traffic once moved, so nothing moved. "
            f"Point those rules at the dependants' own tier group first"
        )
        can_move = False
    if deps and m2 != "enforce":
        why.append(f"PER-DSG-2 mode is {m2}")
        can_move = False
    if deps and exempt_dsg2:
        why.append(f"PER-DSG-2 exempt: {exempt_dsg2}")
        can_move = False
    moves = (
        tuple(
            Move(d.eni_id, d.instance_id, d.group_ids, "quarantine" if _quarantined(d, policy) else "interim")
            for d in deps
        )
        if can_move
        else ()
    )
    revoke: tuple[Rule, ...] = ()
    if default.rules:
        if m1 != "enforce":
            why.append(f"PER-DSG-1 mode is {m1}")
        elif exempt_dsg1:
            why.append(f"PER-DSG-1 exempt: {exempt_dsg1}")
        elif deps and not moves:
            why.append("default group rules kept: its dependants could not be moved first")
        else:
            revoke = default.rules
    return MigrationPlan(
        vpc_id=default.vpc_id,
        default=default,
        dependants=deps,
        interim_rules=kept,
        dropped=dropped,
        interim_name=name,
        moves=moves,
        blockers=blockers,
        revoke=revoke,
        dsg1_mode=m1,
        dsg2_mode=m2,
        why_not=tuple(why),
    )


# --- exact fixes where Perimeter cannot act ---------------------------------------------

_VPCE = re.compile(r"vpce-[0-9a-f]+")
_FSMT = re.compile(r"fsmt-[0-9a-f]+")
_LAMBDA = re.compile(r"AWS Lambda VPC ENI-(.+)-[0-9a-f]{8}-")


def fix_for_eni(eni: Eni, default_id: str, target: str) -> str:
    """The command that moves an ENI another service owns off the default group."""
    others = [g for g in eni.group_ids if g != default_id] or ["<tier-sg-id>"]
    keep = " ".join(others)
    desc = eni.description
    if eni.interface_type == "vpc_endpoint" or desc.startswith("VPC Endpoint"):
        vpce = _VPCE.search(desc)
        return (
            f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {vpce.group(0) if vpce else '<vpce-id>'} "
            f"--add-security-group-ids <tier-sg-id> --remove-security-group-ids {default_id}"
        )
    if desc.startswith("EFS mount target"):
        fsmt = _FSMT.search(desc)
        return (
            f"aws efs modify-mount-target-security-groups --mount-target-id "
            f"{fsmt.group(0) if fsmt else '<fsmt-id>'} --security-groups {keep}"
        )
    if eni.interface_type == "lambda" or desc.startswith("AWS Lambda VPC ENI"):
        # --vpc-config replaces the whole VPC config: one ENI knows one subnet of the function,
        # so the command reads the function's own subnets (and dual-stack flag) and changes
        # only the groups.
        m = _LAMBDA.search(desc)
        fn = m.group(1) if m else "<function>"
        groups = ",".join(f'"{g}"' for g in others)
        return (
            f"aws lambda get-function-configuration --function-name {fn} --query VpcConfig --output json"
            " | jq '{SubnetIds, Ipv6AllowedForDualStack: (.Ipv6AllowedForDualStack // false), "
            f"SecurityGroupIds: [{groups}]}}' > vpc-config.json"
            f" && aws lambda update-function-configuration --function-name {fn}"
            " --vpc-config file://vpc-config.json"
        )
    if desc.startswith("RDSNetworkInterface"):
        return f"aws rds modify-db-instance --db-instance-identifier <db> --vpc-security-group-ids {keep}"
    if desc.startswith("ELB "):
        return (
            f"aws elbv2 set-security-groups --load-balancer-arn <arn of {desc[4:]}> --security-groups {keep}"
        )
    return (
        f"{eni.eni_id} is managed by {eni.requester_id or eni.interface_type}: change its security groups "
        f"through that service, replacing {default_id} with a tier group (or {target})"
    )


def fix_for_managed(res: ManagedResource, default_ids: Sequence[str]) -> str:
    """SageMaker models and notebook instances cannot change their VPC config in place."""
    others = [g for g in res.group_ids if g not in default_ids] or ["<model-tier-sg-id>"]
    subnets = ",".join(res.subnet_ids) or "<subnet-ids>"
    if res.type == "AwsSageMakerModel":
        return (
            f"A model's VPC config cannot change. Create a replacement: aws sagemaker create-model "
            f"--model-name {res.name}-v2 --vpc-config SecurityGroupIds={','.join(others)},Subnets={subnets} "
            f"(same image, role and data), create an endpoint config that uses it, aws sagemaker "
            f"update-endpoint --endpoint-name <endpoint> --endpoint-config-name <new config>, then "
            f"aws sagemaker delete-model --model-name {res.name}."
        )
    if res.type == "AwsSageMakerNotebookInstance":
        return (
            f"A notebook instance's security groups cannot change. Stop {res.name}, create a "
            f"replacement with --security-group-ids {' '.join(others)} --subnet-id {subnets.split(',')[0]}, "
            f"move its data, then delete {res.name}."
        )
    # --endpoint-config replaces the whole config (instance type, count, role, key): read it,
    # change only the groups, write it back.
    groups = ",".join(f'"{g}"' for g in others)
    return (
        f"aws bedrock get-marketplace-model-endpoint --endpoint-arn {res.arn} --query "
        f"marketplaceModelEndpoint.endpointConfig --output json | jq '.sageMaker.vpc.securityGroupIds = "
        f"[{groups}]' > endpoint-config.json && aws bedrock update-marketplace-model-endpoint "
        f"--endpoint-arn {res.arn} --endpoint-config file://endpoint-config.json"
    )


# --- tiers ------------------------------------------------------------------------------

_DESC_TIER = (("RDSNetworkInterface", "database"), ("ElastiCache", "cache"))


@dataclass(frozen=True, slots=True)
class TierFinding:
    eni: Eni
    model_groups: tuple[str, ...]
    other: tuple[tuple[str, str], ...]  # (what, tier): a group id or "ENI description"


def tier_findings(
    enis: Iterable[Eni], group_tags: Mapping[str, Mapping[str, str]], policy: Policy
) -> list[TierFinding]:
    """PER-TIER-1: an ENI carrying a model-tier group and a group (or a role, by the owning
    service's description) of another tier."""
    out = []
    for eni in enis:
        tiers = {g: policy.tiers.tier_of(group_tags.get(g, {})) for g in eni.group_ids}
        model = tuple(g for g, t in tiers.items() if t == "model")
        if not model:
            continue
        other = [(g, t) for g, t in tiers.items() if t in OTHER_TIERS]
        other += [("ENI description", t) for prefix, t in _DESC_TIER if eni.description.startswith(prefix)]
        if other:
            out.append(TierFinding(eni, model, tuple(other)))
    return out
