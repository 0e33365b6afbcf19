"""What a security-group API call changed, as a ``GroupChange`` (pure).

A declarative table (``EXTRACTORS``) maps each CloudTrail ``eventName`` to a function that
reads the group id and the rules the call added, in every real wire form:

- ``ipPermissions.items`` with ``ipRanges`` / ``ipv6Ranges`` / ``prefixListIds`` / ``groups``;
- the shorthand form (top-level ``cidrIp``, ``ipProtocol``, ``fromPort``, ``toPort``);
- ``ModifySecurityGroupRulesRequest`` with ``{"tag", "content"}`` wrapped scalars;
- rule ids from ``responseElements.securityGroupRuleSet`` when the record has them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from perimeter.core.events import ApiCall, MalformedEvent, items, unwrap
from perimeter.core.rules import Rule, rule_from_api_rule, rules_from_permission


@dataclass(frozen=True, slots=True)
class GroupChange:
    """Rules a call added to one group. ``whole_group`` asks the caller to judge every
    current rule of the group (a new group comes with AWS's default egress rule)."""

    group_id: str
    rules: tuple[Rule, ...]
    whole_group: bool = False
    vpc_id: str | None = None
    group_tags: Mapping[str, str] | None = None
    #: Set when the record names the group only by name (default VPC) and carries no id:
    #: ``group_id`` is then the name, to be resolved before any AWS read.
    group_name: str | None = None


def _authorize(call: ApiCall, egress: bool) -> list[GroupChange]:
    req = call.request
    from_response = [
        rule_from_api_rule(r)
        for r in items(call.response.get("securityGroupRuleSet"))
        if isinstance(r, Mapping)
    ]
    # The id comes from the request or, when the request names the group by groupName (default
    # VPC) or CloudTrail omitted an oversized requestParameters, from the rules the response
    # lists. A name with no id anywhere is resolved by the service (it needs an AWS read).
    group_id = req.get("groupId") or next((r.group_id for r in from_response if r.group_id), None)
    group_name = None if group_id else req.get("groupName")
    if not isinstance(group_id or group_name or "", str):
        raise MalformedEvent(f"{call.event_name}: groupId is not a string")
    if not group_id and not group_name:
        raise MalformedEvent(
            f"{call.event_name}: requestParameters lacks groupId and responseElements names no group"
        )
    group_id = str(group_id or group_name)
    # The response is AWS's own account of what it created, with canonical CIDRs and ids.
    response_rules = [
        replace(r, group_id=r.group_id or group_id, egress=egress if r.egress is None else r.egress)
        for r in from_response
    ]
    rules: list[Rule] = []
    for perm in items(req.get("ipPermissions")):
        if not isinstance(perm, Mapping):
            raise MalformedEvent(f"{call.event_name}: ipPermissions item is not an object")
        rules.extend(rules_from_permission(group_id, egress, perm))
    if req.get("cidrIp") or req.get("ipProtocol"):
        shorthand = {
            "ipProtocol": req.get("ipProtocol"),
            "fromPort": req.get("fromPort"),
            "toPort": req.get("toPort"),
            "ipRanges": {"items": [{"cidrIp": req["cidrIp"]}]} if req.get("cidrIp") else {},
            "groups": (
                {"items": [{"groupName": req["sourceSecurityGroupName"]}]}
                if req.get("sourceSecurityGroupName")
                else {}
            ),
        }
        rules.extend(rules_from_permission(group_id, egress, shorthand))
    if response_rules:
        # Request rules the response does not list are kept (moto's response lists only the
        # last permission's rules): the service looks their ids up by content.
        listed = {r.key for r in response_rules}
        rules = response_rules + [r for r in rules if r.key not in listed]
    return [GroupChange(group_id, tuple(rules), group_name=str(group_name) if group_name else None)]


def _authorize_ingress(call: ApiCall) -> list[GroupChange]:
    return _authorize(call, egress=False)


def _authorize_egress(call: ApiCall) -> list[GroupChange]:
    return _authorize(call, egress=True)


def _modify_rules(call: ApiCall) -> list[GroupChange]:
    raw = call.request.get("ModifySecurityGroupRulesRequest", call.request)
    req = unwrap(raw)
    if not isinstance(req, Mapping):
        raise MalformedEvent("ModifySecurityGroupRules: request is not an object")
    group_id = req.get("GroupId") or req.get("groupId")
    if not group_id:
        raise MalformedEvent("ModifySecurityGroupRules: request lacks GroupId")
    rules: list[Rule] = []
    updates = req.get("SecurityGroupRule") or req.get("SecurityGroupRules") or []
    for update in items(updates):
        if not isinstance(update, Mapping):
            raise MalformedEvent("ModifySecurityGroupRules: rule update is not an object")
        rule_id = update.get("SecurityGroupRuleId")
        body = update.get("SecurityGroupRule")
        if not rule_id or not isinstance(body, Mapping):
            raise MalformedEvent(
                "ModifySecurityGroupRules: update lacks SecurityGroupRuleId or SecurityGroupRule"
            )
        rule = rule_from_api_rule({**body, "GroupId": group_id, "SecurityGroupRuleId": rule_id})
        rules.append(rule)
    return [GroupChange(str(group_id), tuple(rules))]


def _create_group(call: ApiCall) -> list[GroupChange]:
    group_id = call.response.get("groupId")
    if not group_id:
        raise MalformedEvent("CreateSecurityGroup: responseElements lacks groupId")
    tags: dict[str, str] = {}
    for spec in items(call.request.get("tagSpecificationSet")):
        for tag in items(spec.get("tags") if isinstance(spec, Mapping) else None):
            if isinstance(tag, Mapping) and "key" in tag:
                tags[str(tag["key"])] = str(tag.get("value", ""))
    return [
        GroupChange(
            str(group_id),
            (),
            whole_group=True,
            vpc_id=call.request.get("vpcId"),
            group_tags=tags,
        )
    ]


Extractor = Callable[[ApiCall], list[GroupChange]]

EXTRACTORS: dict[str, Extractor] = {
    "AuthorizeSecurityGroupIngress": _authorize_ingress,
    "AuthorizeSecurityGroupEgress": _authorize_egress,
    "ModifySecurityGroupRules": _modify_rules,
    "CreateSecurityGroup": _create_group,
}


def extract_group_changes(call: ApiCall) -> list[GroupChange]:
    """The group changes a call made.

    Raises:
        MalformedEvent: an event name this module does not handle, or a record whose
            parameters are missing or malformed.
    """
    extractor = EXTRACTORS.get(call.event_name)
    if extractor is None:
        raise MalformedEvent(f"no security-group extractor for event {call.event_name!r}")
    try:
        changes = extractor(call)
        for change in changes:
            if not isinstance(change.group_id, str) or not change.group_id.strip():
                raise MalformedEvent(f"{call.event_name}: {change.group_id!r} is not a security group")
            for rule in change.rules:
                # read every field the controls will read: a bad port or CIDR fails here,
                # before any AWS call, not half-way through a decision
                rule.key, rule.ports, rule.describe()
    except MalformedEvent:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        raise MalformedEvent(f"{call.event_name}: unreadable record ({type(exc).__name__}: {exc})") from exc
    return changes
