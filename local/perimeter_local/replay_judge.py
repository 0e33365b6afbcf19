"""Judge one replayed CloudTrail record with Perimeter's own evaluation, from the record alone.

History carries no account state: no group's other rules, no role's trust policy, no VPC's
flow logs as they were. So a replay judges the *delta* each record states — the rules an
Authorize added, the policy document an IAM call put, the VPC config a CreateModel named —
with the same pure evaluation the event path uses (``security_groups.evaluate`` for security-group rules, the
posture evaluators and ``posture.judge`` for the rest), and makes no AWS call. What a record
cannot tell without state (which VPC a deleted flow log served, whether a role is a model
execution role, what a default-SG migration would move) is counted as *undetermined*, with
the reason, never guessed.

"Would remediate" means what the event path's ``enforce`` would have done: for the SG
controls ``Violation.enforce`` (mode ``enforce``, score at or above the enforce threshold, not
exempt); for the posture controls, a control that remediates at all (PER-FL-1 creates a flow
log; the others are detect-only) in mode ``enforce`` and not exempt, as ``posture.act``
acts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from perimeter.core.controls import REGISTRY
from perimeter.core.events import ApiCall, MalformedEvent, unwrap
from perimeter.core.rules import Rule
from perimeter.flow_logs.evaluate import vpc_issue
from perimeter.iam.evaluate import (
    BadPolicyDocument,
    Principal,
    invoke_issues,
    is_admin,
    parse_document,
    resource_policy_issue,
    statements,
    trust_issue,
)
from perimeter.model_posture.evaluate import (
    ModelFacts,
    NotebookFacts,
    domain_issue,
    marketplace_outside_vpc,
    model_outside_vpc,
    model_without_isolation,
    notebook_issues,
)
from perimeter.policy import Policy
from perimeter.posture.controls import Issue, judge
from perimeter.security_groups.changes import GroupChange, extract_group_changes
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.evaluate import decide


@dataclass(frozen=True, slots=True)
class Hit:
    """One control violated on one resource by one record."""

    control: str
    resource: str
    score: int
    severity: str
    mode: str
    exemption: str | None
    remediate: bool
    what: str


@dataclass(slots=True)
class Verdict:
    """What one function's evaluation says of one record."""

    function: str
    hits: list[Hit] = field(default_factory=list)
    #: parts of the record the evaluation cannot judge without account state, with why
    undetermined: list[str] = field(default_factory=list)
    malformed: str | None = None

    @property
    def outcome(self) -> str:
        if self.malformed:
            return "malformed"
        if self.hits:
            return "violating"
        if self.undetermined:
            return "undetermined"
        return "clean"


# --- security groups: the one call into the SG evaluation --------------------------------


#: AWS gives every new VPC security group this egress rule (all traffic to 0.0.0.0/0).
def _default_egress(group_id: str) -> Rule:
    return Rule(group_id, True, "-1", None, None, cidr="0.0.0.0/0")


def judge_group_delta(change: GroupChange, call: ApiCall, policy: Policy, today: dt.date) -> list[Hit]:
    """Judge the rules one record added to one group, as if they were the group's whole
    state — the only state a record carries. THE single place replay calls the security-
    group evaluation (``perimeter.security_groups.evaluate.decide``): when that evaluation changes shape
    (whole-state judgment, union exposure across a group's sources), this function adapts
    and nothing else in replay does.
    """
    rules = change.rules
    if change.whole_group and change.vpc_id:
        rules = (*rules, _default_egress(change.group_id))
    # The record's rules are both the group's state and what the actor added (so a principal
    # exemption covers them); a rule whose direction the record does not give cannot be
    # placed in a state, and is reported undetermined by the caller.
    delta = replace(change, rules=rules)
    ctx = GroupContext(
        group_id=change.group_id,
        account=call.account,
        region=call.region,
        vpc_id=change.vpc_id,
        tags=dict(change.group_tags or {}),
        current_rules=tuple(r for r in rules if r.egress is not None),
        exists=True,
    )
    decision = decide(delta, ctx, policy, principal_arn=call.actor.arn, today=today)
    return [
        Hit(
            control=v.control.id,
            resource=change.group_id,
            score=v.score.value,
            severity=v.severity,
            mode=v.mode,
            exemption=v.exemption.label if v.exemption else None,
            remediate=v.enforce,
            what=v.rule.describe(),
        )
        for v in decision.violations
    ]


def _judge_sg(call: ApiCall, policy: Policy, today: dt.date, out: Verdict) -> None:
    from perimeter.security_groups.subjects import PREFIX_LIST_EVENTS, RESOLVING

    if call.event_name in RESOLVING or call.event_name in PREFIX_LIST_EVENTS:
        # A fixing call (or a prefix list's new entries): what it resolves or exposes is the
        # groups' state after it, which a record does not carry.
        out.undetermined.append(f"{call.event_name}: judged on the groups' current state (account state)")
        return
    for change in extract_group_changes(call):
        if any(r.egress is None for r in change.rules):
            out.undetermined.append(f"{call.event_name}: a modified rule's direction is not in the record")
        out.hits.extend(judge_group_delta(change, call, policy, today))


# --- posture controls --------------------------------------------------------------------


def _posture_hits(issues: Sequence[Issue], call: ApiCall, policy: Policy) -> list[Hit]:
    hits = []
    for j in judge(issues, policy, principal_arn=call.actor.arn):
        control = REGISTRY[j.issue.control_id]
        hits.append(
            Hit(
                control=j.issue.control_id,
                resource=j.issue.resource.short_id,
                score=j.issue.score,
                severity=j.severity,
                mode=j.mode,
                exemption=j.exemption,
                remediate=bool(control.permissions) and j.mode == "enforce" and j.exemption is None,
                what=j.issue.summary,
            )
        )
    return hits


def _req(mapping: Mapping[str, Any], name: str) -> Any:
    """CloudTrail's lower camel case, or the API's casing in hand-made records."""
    if name in mapping:
        return mapping[name]
    return mapping.get(name[0].upper() + name[1:])


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping) and "items" in value:
        value = value["items"]
    return tuple(str(v) for v in value or () if isinstance(v, str))


def _judge_model(call: ApiCall, policy: Policy, today: dt.date, out: Verdict) -> None:
    req = unwrap(call.request)
    name = call.event_name
    if name == "CreateModel":
        model = str(_req(req, "modelName") or "?")
        vpc = _req(req, "vpcConfig") or {}
        iso = _req(req, "enableNetworkIsolation")
        facts = ModelFacts(
            name=model,
            arn=str(
                _req(call.response, "modelArn")
                or f"arn:aws:sagemaker:{call.region}:{call.account}:model/{model}"
            ),
            subnets=_strings(_req(vpc, "subnets")),
            security_groups=_strings(_req(vpc, "securityGroupIds")),
            network_isolation=iso is True or str(iso).lower() == "true",
        )
        chain = (f"model {model}",)
        issues = [i for i in (model_outside_vpc(facts, chain), model_without_isolation(facts, chain)) if i]
        out.hits.extend(_posture_hits(issues, call, policy))
        if facts.in_vpc:
            out.undetermined.append(
                "CreateModel: its VPC's flow logs and runtime endpoints, and its groups' rules, "
                "are account state"
            )
    elif name == "CreateNotebookInstance":
        nb = str(_req(req, "notebookInstanceName") or "?")
        facts_nb = NotebookFacts(
            name=nb,
            arn=str(
                _req(call.response, "notebookInstanceArn")
                or f"arn:aws:sagemaker:{call.region}:{call.account}:notebook-instance/{nb}"
            ),
            subnet=_req(req, "subnetId"),
            security_groups=_strings(_req(req, "securityGroupIds")),
            direct_internet=str(_req(req, "directInternetAccess") or "Enabled") != "Disabled",
        )
        out.hits.extend(_posture_hits(notebook_issues(facts_nb, (f"notebook {nb}",)), call, policy))
    elif name == "CreateMarketplaceModelEndpoint":
        ep = str(_req(req, "endpointName") or "?")
        vpc = ((_req(req, "endpointConfig") or {}).get("sageMaker") or {}).get("vpc") or {}
        endpoint = _req(call.response, "marketplaceModelEndpoint") or {}
        arn = str(
            _req(endpoint, "endpointArn") or f"arn:aws:sagemaker:{call.region}:{call.account}:endpoint/{ep}"
        )
        if not vpc.get("subnetIds") or not vpc.get("securityGroupIds"):
            issue = marketplace_outside_vpc(arn, ep, (f"Marketplace endpoint {ep}",))
            out.hits.extend(_posture_hits([issue], call, policy))
        out.undetermined.append(f"{name}: the account's guardrails (PER-GR-1) are account state")
    elif name == "CreateDomain" or (name == "UpdateDomain" and _req(req, "appNetworkAccessType")):
        # The access type is the record's (CreateDomain's default is PublicInternetOnly).
        resp = call.response or {}
        domain_id = str(_req(req, "domainId") or _req(resp, "domainId") or "?")
        arn = str(
            _req(resp, "domainArn") or f"arn:aws:sagemaker:{call.region}:{call.account}:domain/{domain_id}"
        )
        access = str(_req(req, "appNetworkAccessType") or "PublicInternetOnly")
        issue = domain_issue(
            arn, domain_id, str(_req(req, "domainName") or ""), access, (f"domain {domain_id}",)
        )
        out.hits.extend(_posture_hits([issue] if issue else [], call, policy))
    elif name == "PutResourcePolicy":
        # The policy the call put is in the record: anyone let in without a condition.
        resource_arn = str(_req(req, "resourceArn") or "")
        try:
            doc = parse_document(_req(req, "resourcePolicy"))
        except BadPolicyDocument:
            out.undetermined.append("PutResourcePolicy: the record's resourcePolicy is not readable")
            return
        issue = resource_policy_issue(doc, resource_arn)
        out.hits.extend(_posture_hits([issue] if issue else [], call, policy))
    elif name not in REMOVALS:
        out.undetermined.append(_NEEDS_STATE.get(name, f"{name}: judged from account state only"))


#: Calls that only take something away (a grant, a model, a VPC) or add the missing control (a
#: flow log): the event path resolves findings on them and never remediates, so their delta
#: violates nothing. DeleteFlowLogs and DeleteGuardrail remove a protection: not listed.
REMOVALS = frozenset(
    {
        "DetachRolePolicy",
        "DeleteRolePolicy",
        "DeleteRole",
        "DeleteResourcePolicy",
        "DeleteDomain",
        "DetachGroupPolicy",
        "DeleteGroupPolicy",
        "RemoveUserFromGroup",
        "DeleteGroup",
        "DetachUserPolicy",
        "DeleteUserPolicy",
        "DeleteUser",
        "DeletePolicyVersion",
        "DeletePolicy",
        "DeleteModel",
        "DeleteEndpoint",
        "DeleteNotebookInstance",
        "DeleteMarketplaceModelEndpoint",
        "CreateFlowLogs",
        "DeleteVpc",
    }
)

_NEEDS_STATE = {
    "UpdateNotebookInstance": "UpdateNotebookInstance: the notebook's network settings are read back",
    "CreateEndpointConfig": "CreateEndpointConfig: its models' network settings are read from the models",
    "CreateEndpoint": "CreateEndpoint: the models it serves are read from its endpoint config",
    "UpdateEndpoint": "UpdateEndpoint: the models it serves are read from its endpoint config",
    "UpdateMarketplaceModelEndpoint": "UpdateMarketplaceModelEndpoint: its VPC config is read back",
    "CreateModelImportJob": "CreateModelImportJob: the account's guardrails (PER-GR-1) are account state",
    "CreateGuardrail": "CreateGuardrail: whether a HIGH prompt-attack guardrail exists is account state",
    "UpdateGuardrail": "UpdateGuardrail: weakening is measured against the published version",
    "DeleteGuardrail": "DeleteGuardrail: whether a HIGH prompt-attack guardrail remains is account state",
    "DeleteFlowLogs": "DeleteFlowLogs: which VPC lost it, and what flow logs it keeps, is account state",
    "RegisterMarketplaceModelEndpoint": (
        "RegisterMarketplaceModelEndpoint: the endpoint's VPC config is read back"
    ),
    "CreateGuardrailVersion": "CreateGuardrailVersion: weakening is measured against the previous version",
    "PutEnforcedGuardrailConfiguration": (
        "PutEnforcedGuardrailConfiguration: the guardrail's filters are account state"
    ),
    "DeleteEnforcedGuardrailConfiguration": (
        "DeleteEnforcedGuardrailConfiguration: what enforcement remains is account state"
    ),
    "CreateCustomModelDeployment": (
        "CreateCustomModelDeployment: the account's guardrails (PER-GR-1) are account state"
    ),
}


def _judge_iam(call: ApiCall, policy: Policy, today: dt.date, out: Verdict) -> None:
    req = call.request
    name = call.event_name
    admin_why = ""
    if name in ("PutRolePolicy", "PutUserPolicy", "PutGroupPolicy"):
        kind = {"PutRolePolicy": "role", "PutUserPolicy": "user", "PutGroupPolicy": "group"}[name]
        who = str(req.get(f"{kind}Name"))
        target = Principal(kind, who, f"arn:aws:iam::{call.account}:{kind}/{who}")
        source = f"inline policy {req.get('policyName')} on {kind} {who}"
        doc = parse_document(req.get("policyDocument"))
        out.hits.extend(
            _posture_hits(
                invoke_issues(doc, target, source=source, chain=(source, f"{kind} {who}")), call, policy
            )
        )
        if kind == "role" and any(is_admin(s) for s in statements(doc)):
            admin_why = (
                f"{name}: admin on role {who}; whether it is a model execution role is its trust policy"
            )
    elif name == "CreatePolicyVersion":
        arn = str(req.get("policyArn"))
        if not req.get("setAsDefault") or str(req.get("setAsDefault")).lower() == "false":
            return  # a non-default version grants nothing
        doc = parse_document(req.get("policyDocument"))
        source = f"managed policy {arn} (new default version)"
        target = Principal("policy", arn.rsplit("/", 1)[-1], arn)
        out.hits.extend(
            _posture_hits(invoke_issues(doc, target, source=source, chain=(source,)), call, policy)
        )
        if any(is_admin(s) for s in statements(doc)):
            admin_why = f"{name}: admin policy; the roles using it are account state"
    elif name == "UpdateAssumeRolePolicy":
        # The new trust is the record's: whether anyone may assume a model execution role.
        who = str(req.get("roleName"))
        role = Principal(
            "role", who, f"arn:aws:iam::{call.account}:role/{who}", parse_document(req.get("policyDocument"))
        )
        issue = trust_issue(role)
        out.hits.extend(_posture_hits([issue] if issue else [], call, policy))
    elif name in ("AttachGroupPolicy", "AddUserToGroup"):
        admin_why = f"{name}: the group's policies and members are account state"
    elif name in ("AttachRolePolicy", "AttachUserPolicy", "SetDefaultPolicyVersion"):
        admin_why = f"{name}: the managed policy's document (and a role's trust policy) are account state"
    elif name not in REMOVALS:
        admin_why = f"{name}: not judged from the record"
    if admin_why:
        out.undetermined.append(admin_why)


def _judge_flow_log(call: ApiCall, policy: Policy, today: dt.date, out: Verdict) -> None:
    if call.event_name == "CreateVpc":
        resp = unwrap(call.response)
        vpc_id = ((resp.get("vpc") or (resp.get("CreateVpcResponse") or {}).get("vpc")) or {}).get("vpcId")
        if not vpc_id:
            raise MalformedEvent("CreateVpc record names no VPC (responseElements.vpc.vpcId)")
        # A VPC has no flow log, and holds no model-tier group, at the moment it is created:
        # the record says all there is. It is judged when the policy's scope takes it in
        # (flow_logs.scope all-vpcs, or the VPC listed), as the event path does.
        if not policy.flow_logs.in_scope(vpc_id, ()):
            return
        issue = vpc_issue(vpc_id, [], account=call.account, region=call.region, why="It was just created.")
        out.hits.extend(_posture_hits([issue] if issue else [], call, policy))
    elif call.event_name in REMOVALS:
        return
    else:
        out.undetermined.append(_NEEDS_STATE.get(call.event_name, f"{call.event_name}: not judged"))


def _judge_default_sg(call: ApiCall, policy: Policy, today: dt.date, out: Verdict) -> None:
    # Default-SG findings come from a migration plan over the VPC's ENIs and the default
    # group's rules (dsg_service): none of it is in a record. What a record can show is that
    # it attached a group named "default" (RunInstances, CreateNetworkInterface responses).
    if _names_default_group(call.response):
        out.undetermined.append(
            f"{call.event_name}: attaches a default SG (PER-DSG-2); the move plan needs the VPC's ENIs "
            "and the default group's rules"
        )
    else:
        out.undetermined.append(
            f"{call.event_name}: default-SG and tier checks need the VPC's ENIs and groups (account state)"
        )


def _names_default_group(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        if value.get("groupName") == "default" and value.get("groupId"):
            return True
        return any(_names_default_group(v) for v in value.values() if type(v) in (dict, list))
    if kind is list:
        return any(_names_default_group(v) for v in value if type(v) in (dict, list))
    return False


#: The NetGuard calls that only close a hop: their delta opens nothing.
NET_CLOSING = frozenset(
    {
        "DetachInternetGateway",
        "DeleteRoute",
        "DisassociateRouteTable",
        "DeleteNetworkAclEntry",
        "DisassociateAddress",
    }
)


def _judge_net(call: ApiCall, policy: Policy, today: dt.date, out: Verdict) -> None:
    # PER-NET-1 judges a path: gateway, route table, subnet, address, ACL and groups together.
    # A record holds one hop; the others are account state, never guessed.
    from perimeter.network.service import subject_of

    subject_of(call)  # a record lacking the id its kind carries is malformed, as live
    if call.event_name in NET_CLOSING or policy.mode("PER-NET-1") == "off":
        return
    out.undetermined.append(
        f"{call.event_name}: whether a model ENI is reachable needs the VPC's gateways, routes, "
        "addresses, network ACLs and groups (account state)"
    )


Judge = Callable[[ApiCall, Policy, dt.date, Verdict], None]

#: template.yaml function -> how replay judges a record routed to it
JUDGES: dict[str, Judge] = {
    "SgGuardFunction": _judge_sg,
    "ModelPostureFunction": _judge_model,
    "IamGuardFunction": _judge_iam,
    "FlowLogGuardFunction": _judge_flow_log,
    "DefaultSgGuardFunction": _judge_default_sg,
    "NetGuardFunction": _judge_net,
}


def judge_record(function: str, call: ApiCall, policy: Policy, today: dt.date) -> Verdict:
    """The verdict of ``function``'s evaluation on one parsed record; a record the
    evaluation rejects is reported as malformed, never dropped."""
    out = Verdict(function)
    judge_fn = JUDGES.get(function)
    if judge_fn is None:
        out.undetermined.append(f"no replay judgment for function {function}")
        return out
    try:
        judge_fn(call, policy, today, out)
    except (MalformedEvent, BadPolicyDocument) as exc:
        out.hits.clear()
        out.undetermined.clear()
        out.malformed = str(exc)
    return out
