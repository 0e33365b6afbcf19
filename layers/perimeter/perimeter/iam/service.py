"""The IAM event path (PER-IAM-1): policies that grant model invocation too widely, and
administrator policies attached to model execution roles. Detect only: Perimeter does not
rewrite IAM policies (a wrong guess would break production callers or lock people out).

The event only says *which* principal to look at; ``evaluate_role``, ``evaluate_user``,
``evaluate_group`` and ``evaluate_policy`` judge its whole current state (every inline and
attached policy as IAM returns them now, a user's groups' policies, a role's trust policy),
so the finding per (control, principal) lists every problem and is resolved (PASSED/ARCHIVED)
as soon as none is left: after DetachRolePolicy, DeleteRolePolicy, DeletePolicyVersion,
DeleteRole, DetachGroupPolicy, RemoveUserFromGroup... A group's grant is a finding on the group
and on each member user (they hold it). The sweep can call the same functions.

IAM is a global service: CloudTrail delivers its events in us-east-1 only, with source
``aws.iam``. IamGuard therefore has to run in us-east-1 (or receive the events from a
us-east-1 rule forwarding to this region's bus); the region guard does not apply to these
events, and findings are imported in the deployment's own region.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from perimeter.core.arns import partition_of
from perimeter.core.events import MalformedEvent
from perimeter.core.guard import admit
from perimeter.core.runtime import Runtime
from perimeter.iam.evaluate import (
    ADMIN_POLICY_ARNS,
    GroupPolicies,
    Principal,
    invoke_issues,
    principal_issues,
    principal_resource,
)
from perimeter.posture.act import report_evaluation
from perimeter.posture.controls import Evaluation

ROLE_EVENTS = frozenset(
    {
        "PutRolePolicy",
        "AttachRolePolicy",
        "UpdateAssumeRolePolicy",
        "DetachRolePolicy",
        "DeleteRolePolicy",
        "DeleteRole",
    }
)
USER_EVENTS = frozenset(
    {"PutUserPolicy", "AttachUserPolicy", "DetachUserPolicy", "DeleteUserPolicy", "DeleteUser"}
)
POLICY_EVENTS = frozenset(
    {"CreatePolicyVersion", "DeletePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy"}
)
#: A group's policies reach every member user: the group and its members are judged.
GROUP_EVENTS = frozenset(
    {"AttachGroupPolicy", "PutGroupPolicy", "DetachGroupPolicy", "DeleteGroupPolicy", "DeleteGroup"}
)
#: Membership: the user gains or loses the group's policies (both are judged).
MEMBERSHIP_EVENTS = frozenset({"AddUserToGroup", "RemoveUserFromGroup"})
IAM_EVENTS = ROLE_EVENTS | USER_EVENTS | POLICY_EVENTS | GROUP_EVENTS | MEMBERSHIP_EVENTS
#: Principals re-judged per managed-policy change at most.
MAX_ROLES = 25
_CONTROL = "PER-IAM-1"


def _iam(rt: Runtime) -> Any:
    from perimeter.adapters.iam import IamAdapter

    return IamAdapter(rt.client("iam"))


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Handle one EventBridge event carrying an IAM policy change."""
    # Global service: judge the event whatever region CloudTrail names (always us-east-1 for
    # real events), but keep the account and loop guards.
    call, ignored = admit(event, rt.settings, global_service=True)
    if ignored:
        return ignored
    if call.event_name not in IAM_EVENTS:
        return {
            "status": "ignored",
            "reason": f"{call.event_name} is not an IAM policy event",
            "event_id": call.event_id,
        }
    iam = _iam(rt)
    req = call.request
    account = call.account
    _PARTITION[0] = partition_of(rt.settings.region or call.region)
    if call.event_name in ROLE_EVENTS:
        ev, judged_what, gone = evaluate_role(iam, _name(req, "roleName", 64), account)
    elif call.event_name in USER_EVENTS:
        ev, judged_what, gone = evaluate_user(iam, _name(req, "userName", 64), account)
    elif call.event_name in GROUP_EVENTS:
        ev, judged_what, gone = evaluate_group(iam, _name(req, "groupName", 128), account)
    elif call.event_name in MEMBERSHIP_EVENTS:
        ev, judged_what, gone = evaluate_group(iam, _name(req, "groupName", 128), account, members=False)
        user_ev, user_what, user_gone = evaluate_user(iam, _name(req, "userName", 64), account)
        ev.extend(user_ev)
        judged_what += user_what
        gone += user_gone
    else:
        ev, judged_what, gone = evaluate_policy(iam, _policy_arn(req), account)
    base = {"event_id": call.event_id, "event_name": call.event_name, "resources": judged_what}
    local = replace(call, region=rt.settings.region)
    return report_evaluation(local, ev, rt, context, base=base, gone=gone, judged_what=judged_what)


#: IAM's own rules for the names and ARNs an event gives (botocore's model: 1-64 characters of
#: ``[\w+=,.@-]`` for a role or user, 1-128 for a group; a policy ARN of 20-2048): a value outside
#: them is not a record Perimeter understood, and would fail IAM's parameter validation
_IAM_NAME = re.compile(r"[\w+=,.@-]+")


def _name(req: Any, key: str, longest: int) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= longest or not _IAM_NAME.fullmatch(value):
        shown = value[:80] if isinstance(value, str) else type(value).__name__
        raise MalformedEvent(f"requestParameters.{key}: {shown!r} is not an IAM name")
    return value


def _policy_arn(req: Any) -> str:
    value = req.get("policyArn")
    if not isinstance(value, str) or not 20 <= len(value) <= 2048 or not value.startswith("arn:"):
        shown = value[:80] if isinstance(value, str) else type(value).__name__
        raise MalformedEvent(f"requestParameters.policyArn: {shown!r} is not a policy ARN")
    return value


def _arn(account: str, kind: str, name: str) -> str:
    # The partition follows the deployment's region (aws-cn, aws-us-gov): set once per event.
    return f"arn:{_PARTITION[0]}:iam::{account}:{kind}/{name}"


_PARTITION = ["aws"]


def _attached_docs(iam: Any, arns: list[str]) -> list[tuple[str, Any]]:
    # AWS managed admin policies are known by ARN: no read needed to judge them.
    return [(arn, None if arn in ADMIN_POLICY_ARNS else iam.policy_document(arn)) for arn in arns]


def evaluate_role(iam: Any, name: str, account: str) -> tuple[Evaluation, list[str], list[str]]:
    """PER-IAM-1 on a role's whole current state: ``(evaluation, judged, gone)``."""
    ev = Evaluation()
    role = iam.role(name)
    if role is None:
        gone = Principal("role", name, _arn(account, "role", name))
        ev.cover(_CONTROL, principal_resource(gone), f"role {name} was deleted.")
        return ev, [], [f"role {name}"]
    inline = iam.inline_policies("role", name)
    attached = iam.attached_policies("role", name)
    if inline is None or attached is None:  # deleted between reads
        ev.cover(_CONTROL, principal_resource(role), f"role {name} was deleted.")
        return ev, [], [f"role {name}"]
    ev.issues.extend(principal_issues(role, inline=inline, attached=_attached_docs(iam, attached)))
    ev.cover(
        _CONTROL,
        principal_resource(role),
        f"none of role {name}'s {len(inline)} inline and {len(attached)} attached policies "
        "grants model invocation on * or administrator access to a model execution role.",
    )
    return ev, [f"role {name}"], []


def _group_policies(iam: Any, names: list[str]) -> list[GroupPolicies]:
    out: list[GroupPolicies] = []
    for group in names:
        inline = iam.inline_policies("group", group)
        attached = iam.attached_policies("group", group)
        if inline is None or attached is None:  # deleted between reads: grants nothing
            continue
        out.append((group, inline, _attached_docs(iam, attached)))
    return out


def evaluate_user(iam: Any, name: str, account: str) -> tuple[Evaluation, list[str], list[str]]:
    """PER-IAM-1 on a user's whole current state: its own inline and attached policies and
    those of every group it belongs to (a member holds them)."""
    ev = Evaluation()
    user = iam.user(name)
    inline = iam.inline_policies("user", name) if user else None
    attached = iam.attached_policies("user", name) if user else None
    groups = iam.groups_of_user(name) if user else None
    if user is None or inline is None or attached is None or groups is None:
        gone = Principal("user", name, _arn(account, "user", name))
        ev.cover(_CONTROL, principal_resource(gone), f"user {name} was deleted.")
        return ev, [], [f"user {name}"]
    ev.issues.extend(
        principal_issues(
            user,
            inline=inline,
            attached=_attached_docs(iam, attached),
            groups=_group_policies(iam, groups),
        )
    )
    in_groups = f" or of its {len(groups)} group(s) ({', '.join(groups)})" if groups else ""
    ev.cover(
        _CONTROL,
        principal_resource(user),
        f"none of user {name}'s {len(inline)} inline and {len(attached)} attached policies{in_groups} "
        "grants model invocation on *.",
    )
    return ev, [f"user {name}"], []


def evaluate_group(
    iam: Any, name: str, account: str, *, members: bool = True
) -> tuple[Evaluation, list[str], list[str]]:
    """PER-IAM-1 on a group's own policies, then (``members``) on the whole state of each member
    user, who holds them: a grant on the group is a finding on the group and on every member."""
    ev = Evaluation()
    found = iam.group(name)
    inline = iam.inline_policies("group", name) if found else None
    attached = iam.attached_policies("group", name) if found else None
    if found is None or inline is None or attached is None:
        gone = Principal("group", name, _arn(account, "group", name))
        ev.cover(_CONTROL, principal_resource(gone), f"group {name} was deleted.")
        return ev, [], [f"group {name}"]
    group, users = found
    ev.issues.extend(principal_issues(group, inline=inline, attached=_attached_docs(iam, attached)))
    ev.cover(
        _CONTROL,
        principal_resource(group),
        f"none of group {name}'s {len(inline)} inline and {len(attached)} attached policies "
        "grants model invocation on *.",
    )
    judged = [f"group {name}"]
    if members:
        for user_name in users[:MAX_ROLES]:
            sub, what, _ = evaluate_user(iam, user_name, account)
            ev.extend(sub)
            judged += what
    return ev, judged, []


def evaluate_policy(iam: Any, arn: str, account: str) -> tuple[Evaluation, list[str], list[str]]:
    """PER-IAM-1 on a managed policy's default version, then on the whole state of every role,
    user and group it is attached to (a new default version can grant or take away admin)."""
    ev = Evaluation()
    name = arn.rsplit("/", 1)[-1]
    target = Principal("policy", name, arn)
    doc = iam.policy_document(arn)
    if doc is None:
        ev.cover(_CONTROL, principal_resource(target), f"managed policy {arn} was deleted.")
        return ev, [], [f"policy {arn}"]
    source = f"managed policy {arn} (default version)"
    ev.issues.extend(invoke_issues(doc, target, source=source, chain=(source,)))
    ev.cover(
        _CONTROL,
        principal_resource(target),
        f"the default version of {arn} grants no model invocation on *.",
    )
    judged = [f"policy {arn}"]
    roles, users, groups = iam.entities_with_policy(arn)
    budget = MAX_ROLES
    for role_name in roles[:budget]:
        sub, what, _ = evaluate_role(iam, role_name, account)
        ev.extend(sub)
        judged += what
    budget = max(0, budget - len(roles))
    for user_name in users[:budget]:
        sub, what, _ = evaluate_user(iam, user_name, account)
        ev.extend(sub)
        judged += what
    budget = max(0, budget - len(users))
    for group_name in groups[:budget]:
        # the group and its members (they hold the policy through it)
        sub, what, _ = evaluate_group(iam, group_name, account)
        ev.extend(sub)
        judged += what
    return ev, judged, []


def sweep_account(iam: Any, account: str) -> tuple[Evaluation, list[str]]:
    """The sweep's way in: every role, user, group and customer managed policy of the account,
    from one paginated GetAccountAuthorizationDetails, judged by the same ``principal_issues``
    and ``invoke_issues`` as their events: a group on its own policies, a user with its groups'
    too (a member holds them), as ``evaluate_group``/``evaluate_user`` do. AWS managed policies
    attached to a principal are read once each, as the event path reads them; the administrator
    ones are known by ARN. Returns the evaluation and the resources judged."""
    details = iam.account_details()
    docs: dict[str, Any] = {arn: doc for arn, (_, doc) in details.policies.items()}

    def attached_docs(arns: list[str]) -> list[tuple[str, Any]]:
        out = []
        for arn in arns:
            if arn in ADMIN_POLICY_ARNS:
                out.append((arn, None))
                continue
            if arn not in docs:
                docs[arn] = iam.policy_document(arn)
            out.append((arn, docs[arn]))
        return out

    groups = {g.name: (inline, attached) for g, inline, attached in details.groups}

    def groups_of(principal: Principal) -> list[GroupPolicies]:
        if principal.kind != "user":
            return []
        names = details.user_groups.get(principal.name, [])
        return [(n, groups[n][0], attached_docs(groups[n][1])) for n in names if n in groups]

    ev = Evaluation()
    judged: list[str] = []
    for kind, entries in (("role", details.roles), ("user", details.users), ("group", details.groups)):
        for principal, inline, attached in entries:
            ev.issues.extend(
                principal_issues(
                    principal, inline=inline, attached=attached_docs(attached), groups=groups_of(principal)
                )
            )
            ev.cover(
                _CONTROL, principal_resource(principal), f"{kind} {principal.name} grants nothing too wide."
            )
            judged.append(f"{kind}/{principal.name}")
    for arn, (name, doc) in details.policies.items():
        target = Principal("policy", name, arn)
        source = f"managed policy {arn} (default version)"
        ev.issues.extend(invoke_issues(doc, target, source=source, chain=(source,)))
        ev.cover(
            _CONTROL,
            principal_resource(target),
            f"the default version of {arn} grants no model invocation on *.",
        )
        judged.append(f"policy/{name}")
    return ev, judged
