"""Which security groups an event asks SgGuard to judge again, and why (pure).

The event only picks the groups; ``security_groups.evaluate.evaluate_group`` judges each one's whole current
state. Three kinds of call lead here:

- calls that add or change rules (``changes.EXTRACTORS``: Authorize*, ModifySecurityGroupRules,
  CreateSecurityGroup): the group, with the rules the call added (they lend their rule ids);
  ``enforce`` may revoke;
- calls that can only take exposure away (RevokeSecurityGroupIngress/Egress,
  DeleteSecurityGroup): the group, so its findings resolve within seconds of a person's fix;
  these never lead to an EC2 write;
- ``ModifyManagedPrefixList``: every group whose ingress names the list (the service finds
  them); entries may have been added or removed, so it may both revoke and resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from perimeter.core.events import ApiCall, MalformedEvent, unwrap
from perimeter.security_groups.changes import EXTRACTORS, GroupChange, extract_group_changes

#: calls that can only remove exposure: read and report, never revoke
RESOLVING = frozenset({"RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "DeleteSecurityGroup"})
#: calls after which a finding may have to go PASSED even when nothing violates
MAY_FIX = RESOLVING | {"ModifySecurityGroupRules", "ModifyManagedPrefixList"}
PREFIX_LIST_EVENTS = frozenset({"ModifyManagedPrefixList"})


@dataclass(frozen=True, slots=True)
class Subjects:
    changes: tuple[GroupChange, ...] = ()
    #: a prefix list whose referencing groups are to be judged
    prefix_list_id: str | None = None
    #: groups the call deleted (their findings are archived)
    deleted: tuple[str, ...] = ()
    #: the call may act (revoke) on what it finds
    may_act: bool = True
    #: the call may have fixed something: passing controls are reported PASSED
    may_fix: bool = False
    #: why there is nothing to judge, when there is not
    reason: str | None = None


def _first(mapping: Mapping[str, object], *names: str) -> str | None:
    for n in names:
        v = mapping.get(n)
        if isinstance(v, str) and v:
            return v
    return None


def subjects_of(call: ApiCall) -> Subjects:
    """What ``call`` asks SgGuard to judge.

    Raises:
        MalformedEvent: an event name SgGuard does not handle, or one lacking its ids.
    """
    name = call.event_name
    if name in EXTRACTORS:
        return Subjects(changes=tuple(extract_group_changes(call)), may_fix=name in MAY_FIX)
    req = unwrap(call.request) if isinstance(call.request, Mapping) else {}
    resp = unwrap(call.response) if isinstance(call.response, Mapping) else {}
    if name in ("RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"):
        gid = _first(req, "groupId") or _first(resp, "groupId")
        if not gid:
            # Named by groupName (EC2-Classic / default VPC): no id to judge; the sweep will.
            return Subjects(may_act=False, reason=f"{name} names no groupId")
        return Subjects(changes=(GroupChange(gid, ()),), may_act=False, may_fix=True)
    if name == "DeleteSecurityGroup":
        gid = _first(req, "groupId") or _first(resp, "groupId")
        if not gid:
            return Subjects(may_act=False, reason="DeleteSecurityGroup names no groupId")
        return Subjects(deleted=(gid,), may_act=False, may_fix=True)
    if name in PREFIX_LIST_EVENTS:
        inner = req.get("ModifyManagedPrefixListRequest", req)
        pl = _first(inner, "PrefixListId", "prefixListId") if isinstance(inner, Mapping) else None
        if not pl:
            raise MalformedEvent(f"{name}: request lacks PrefixListId")
        return Subjects(prefix_list_id=pl, may_fix=True)
    raise MalformedEvent(f"SgGuard does not handle event {name!r}")
