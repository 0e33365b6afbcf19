"""The IAM event path (PER-IAM-1): policies that grant model invocation too widely, and
administrator policies attached to model execution roles. Detect only: Perimeter does not
rewrite IAM policies (a wrong guess would break production callers or lock people out).

IAM is a global service: CloudTrail delivers its events in us-east-1 only, with source
``aws.iam``. IamGuard therefore has to run in us-east-1 (or receive the events from a
us-east-1 rule forwarding to this region's bus); the region guard does not apply to these
events, and findings are imported in the deployment's own region.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from perimeter.events import ApiCall
from perimeter.guard import admit
from perimeter.iam_eval import (
    ADMIN_POLICY_ARNS,
    Principal,
    admin_issue,
    invoke_issues,
    is_admin,
    parse_document,
    statements,
)
from perimeter.posture import Issue, judge
from perimeter.posture_service import act_and_report
from perimeter.runtime import Runtime
from perimeter.telemetry import logger

IAM_EVENTS = frozenset({"PutRolePolicy", "PutUserPolicy", "CreatePolicyVersion", "AttachRolePolicy"})
#: Roles read per CreatePolicyVersion at most, to find model execution roles using the policy.
MAX_ROLES = 25


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
    issues, gone, judged_what = _gather(call, rt)
    judged = judge(issues, rt.policy, principal_arn=call.actor.arn)
    base = {"event_id": call.event_id, "event_name": call.event_name, "resources": judged_what}
    if not judged:
        status = "resource-gone" if gone else "compliant"
        logger.info("no violation", extra={"status": status, "resources": judged_what, "gone": gone})
        return {"status": status, **base, "gone": gone}
    local = replace(call, region=rt.settings.region)
    return rt.run_once(call.event_id, lambda: act_and_report(local, judged, rt, extra=base), context)


def _gather(call: ApiCall, rt: Runtime) -> tuple[list[Issue], list[str], list[str]]:
    """(issues, resources gone, resources judged) for one IAM event."""
    if call.event_name in ("PutRolePolicy", "AttachRolePolicy"):
        return _role_policy(call, _iam(rt))
    req = call.request
    if call.event_name == "PutUserPolicy":
        name = str(req.get("userName"))
        user = Principal("user", name, f"arn:aws:iam::{call.account}:user/{name}")
        source = f"inline policy {req.get('policyName')} on user {name}"
        doc = parse_document(req.get("policyDocument"))
        return invoke_issues(doc, user, source=source, chain=(source, f"user {name}")), [], [f"user {name}"]
    return _policy_version(call, _iam(rt))


def _role_policy(call: ApiCall, iam: Any) -> tuple[list[Issue], list[str], list[str]]:
    req = call.request
    name = str(req.get("roleName"))
    role = iam.role(name)
    if role is None:
        return [], [f"role {name}"], []
    arn = str(req.get("policyArn"))
    known_admin = call.event_name == "AttachRolePolicy" and arn in ADMIN_POLICY_ARNS
    if call.event_name == "PutRolePolicy":
        source = f"inline policy {req.get('policyName')} on role {name}"
        doc = parse_document(req.get("policyDocument"))
    else:
        source = f"managed policy {arn}"
        # AWS managed admin policies are known by ARN: no read needed to judge them.
        doc = None if known_admin else iam.policy_document(arn)
        if doc is None and not known_admin:
            return [], [f"policy {arn}"], [f"role {name}"]
    chain = (source, f"role {name}")
    issues = invoke_issues(doc, role, source=source, chain=chain) if doc is not None else []
    admin_stmt = next((s for s in statements(doc or {}) if is_admin(s)), None)
    if admin_stmt is not None or known_admin:
        issue = admin_issue(role, source=source, statement=admin_stmt, chain=chain)
        if issue:
            issues.append(issue)
    return issues, [], [f"role {name}"]


def _policy_version(call: ApiCall, iam: Any) -> tuple[list[Issue], list[str], list[str]]:
    """CreatePolicyVersion: only the default version grants anything."""
    req = call.request
    arn = str(req.get("policyArn"))
    if not req.get("setAsDefault"):
        return [], [], [f"policy {arn} (new version not default)"]
    doc = parse_document(req.get("policyDocument"))
    source = f"managed policy {arn} (new default version)"
    target = Principal("policy", arn.rsplit("/", 1)[-1], arn)
    issues = invoke_issues(doc, target, source=source, chain=(source,))
    admin_stmt = next((s for s in statements(doc) if is_admin(s)), None)
    if admin_stmt is not None:
        for role_name in iam.roles_with_policy(arn)[:MAX_ROLES]:
            role = iam.role(role_name)
            issue = role and admin_issue(
                role, source=source, statement=admin_stmt, chain=(source, f"role {role_name}")
            )
            if issue:
                issues.append(issue)
    return issues, [], [f"policy {arn}"]
