"""PER-IAM-1 judged (pure): which statements of a policy grant model invocation too widely,
and whether an administrator policy lands on a model execution role.

A statement grants invocation when one of its actions (exact, or a wildcard such as
``bedrock:Invoke*`` or ``sagemaker:*``) covers ``sagemaker:InvokeEndpoint*``,
``bedrock:InvokeModel*`` or ``bedrock:Converse*``; it is too wide when its Resource is ``*``
(or an ARN that is all wildcards after the service). The bare ``*`` action is judged as
administrator access instead. Findings quote the statement, so the reviewer sees exactly
what was granted, and say whether Bedrock invocations are tied to a guardrail
(``bedrock:GuardrailIdentifier`` condition).
"""

from __future__ import annotations

import fnmatch
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perimeter.core.arns import PARTITIONS
from perimeter.posture.controls import Issue, arn_resource

INVOKE_ACTIONS = (
    "sagemaker:invokeendpoint",
    "sagemaker:invokeendpointasync",
    "sagemaker:invokeendpointwithresponsestream",
    "bedrock:invokemodel",
    "bedrock:invokemodelwithresponsestream",
    "bedrock:converse",
    "bedrock:conversestream",
)
ADMIN_POLICY_ARNS = frozenset(
    f"arn:{partition}:iam::aws:policy/{name}"
    for partition in PARTITIONS
    for name in ("AdministratorAccess", "PowerUserAccess")
)
MODEL_SERVICES = ("sagemaker.amazonaws.com", "bedrock.amazonaws.com")


class BadPolicyDocument(ValueError):
    """The policy text in the record is not JSON (CloudTrail sometimes URL-encodes it)."""


def parse_document(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value or "")
    for candidate in (text, urllib.parse.unquote(text)):
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    raise BadPolicyDocument("policyDocument is not a JSON object")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def statements(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _as_list(doc.get("Statement")) if isinstance(s, dict)]


def invoke_actions(stmt: Mapping[str, Any]) -> list[str]:
    """The invoke actions an Allow statement grants (a bare ``*`` is admin, judged apart)."""
    if stmt.get("Effect") != "Allow":
        return []
    granted = []
    for pattern in _as_list(stmt.get("Action")):
        p = str(pattern).lower()
        if p in ("*", "*:*"):
            continue
        granted.extend(a for a in INVOKE_ACTIONS if fnmatch.fnmatchcase(a, p))
    return sorted(set(granted))


def _every_name(text: str) -> bool:
    """An ARN naming every resource of its service or of one of its types: all wildcards after
    the service (``arn:aws:bedrock:*:*:*``, ``arn:aws:sagemaker:*``), or a type whose name part
    is a wildcard (``arn:aws:sagemaker:*:*:endpoint/*``, ``...:endpoint*``,
    ``arn:aws:bedrock:us-east-1::foundation-model/*``)."""
    if not text.startswith("arn:"):
        return False
    parts = text.split(":", 5)
    if len(parts) < 6:
        # "arn:aws:sagemaker:*": IAM's wildcard spans the missing segments too.
        return len(parts) >= 3 and parts[-1].strip("*") == "" and parts[-1] != ""
    tail = parts[5]
    if tail.strip("*/") == "":
        return True
    name = tail.rsplit("/", 1)[-1] if "/" in tail else tail
    if "/" in tail:
        return name.strip("*") == ""
    # "endpoint*" (no "/"): every resource whose id starts with the type's word.
    return tail.endswith("*") and ":" not in tail and tail.rstrip("*").isalpha()


def wide_resources(stmt: Mapping[str, Any]) -> list[str]:
    out = [str(r) for r in _as_list(stmt.get("Resource")) if str(r) == "*" or _every_name(str(r))]
    if stmt.get("NotResource") is not None:
        out.append("NotResource " + json.dumps(stmt["NotResource"]))
    return out


def is_admin(stmt: Mapping[str, Any]) -> bool:
    if stmt.get("Effect") != "Allow":
        return False
    actions = [str(a) for a in _as_list(stmt.get("Action"))]
    return any(a in ("*", "*:*") for a in actions) and "*" in [str(r) for r in _as_list(stmt.get("Resource"))]


def guardrail_condition(stmt: Mapping[str, Any]) -> str | None:
    for op, body in (stmt.get("Condition") or {}).items():
        if isinstance(body, Mapping):
            for key, value in body.items():
                if str(key).lower() == "bedrock:guardrailidentifier":
                    return f"{op} bedrock:GuardrailIdentifier {json.dumps(value)}"
    return None


def wildcard_principals(trust: Mapping[str, Any] | None) -> list[str]:
    """Allow statements of a trust policy that let anyone assume the role."""
    out = []
    for s in statements(trust or {}):
        if s.get("Effect") != "Allow" or s.get("Condition"):
            continue
        p = s.get("Principal")
        values = [p] if isinstance(p, str) else [v for vs in (p or {}).values() for v in _as_list(vs)]
        if "*" in [str(v) for v in values]:
            out.append(json.dumps(s, sort_keys=True))
    return out


def is_model_execution_role(trust: Mapping[str, Any] | None) -> bool:
    for s in statements(trust or {}):
        p = s.get("Principal") or {}
        services = _as_list(p.get("Service")) if isinstance(p, Mapping) else []
        if s.get("Effect") == "Allow" and any(str(v) in MODEL_SERVICES for v in services):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity a policy lands on."""

    kind: str  # "role" | "user" | "group" | "policy"
    name: str
    arn: str
    trust: Mapping[str, Any] | None = None

    @property
    def asff_type(self) -> str:
        return {"role": "AwsIamRole", "user": "AwsIamUser", "group": "AwsIamGroup", "policy": "AwsIamPolicy"}[
            self.kind
        ]


def _quote(stmt: Mapping[str, Any]) -> str:
    return json.dumps(stmt, sort_keys=True, separators=(",", ":"))


def invoke_issues(
    doc: Mapping[str, Any], target: Principal, *, source: str, chain: Sequence[str]
) -> list[Issue]:
    """One issue per offending statement of ``doc`` attached to ``target``."""
    out = []
    anyone = wildcard_principals(target.trust) if target.kind == "role" else []
    for i, stmt in enumerate(statements(doc)):
        actions = invoke_actions(stmt)
        if not actions:
            continue
        wide = wide_resources(stmt)
        if not wide and not anyone:
            continue
        why = []
        score = 0
        if wide:
            why.append(f"on {', '.join(wide)}")
            score += 55
        if anyone:
            why.append(f'to any principal (role {target.name} trusts "*")')
            score += 60
        guard = guardrail_condition(stmt)
        gr_text = ""
        if any(a.startswith("bedrock:") for a in actions):
            gr_text = (
                f" Guardrail required by condition {guard}."
                if guard
                else " No bedrock:GuardrailIdentifier condition: callers may skip guardrails."
            )
            score += 0 if guard else 10
        sid = stmt.get("Sid") or f"#{i}"
        out.append(
            Issue(
                control_id="PER-IAM-1",
                resource=arn_resource(
                    target.asff_type,
                    target.arn,
                    f"{target.kind}/{target.name}",
                    {"Name": target.name, "Source": source},
                ),
                score=min(100, score),
                reasons=tuple(why) + (("no guardrail condition (+10)",) if gr_text and not guard else ()),
                summary=(
                    f"{source} grants {', '.join(actions)} "
                    + " and ".join(why)
                    + f" (statement {sid}): "
                    + _quote(stmt)
                    + "."
                    + gr_text
                ),
                chain=(*chain, f"statement {sid}"),
                fix=(
                    "Name the endpoint / model ARNs in Resource "
                    "(arn:aws:sagemaker:<region>:<account>:endpoint/<name>, "
                    "arn:aws:bedrock:<region>::foundation-model/<id>), "
                    "add a bedrock:GuardrailIdentifier condition "
                    "for Bedrock, and trust named principals only."
                ),
                evidence={"perimeter/statement": _quote(stmt)},
            )
        )
    return out


def admin_issue(
    target: Principal, *, source: str, statement: Mapping[str, Any] | None, chain: Sequence[str]
) -> Issue | None:
    """Administrator access on a role that SageMaker or Bedrock assumes to run a model."""
    if target.kind != "role" or not is_model_execution_role(target.trust):
        return None
    quoted = _quote(statement) if statement else source
    return Issue(
        control_id="PER-IAM-1",
        resource=arn_resource(
            "AwsIamRole", target.arn, f"role/{target.name}", {"Name": target.name, "Source": source}
        ),
        score=85,
        reasons=(
            "administrator access on a model execution role: a compromised model owns the account (+85)",
        ),
        summary=(
            f"Model execution role {target.name} (assumed by SageMaker/Bedrock) "
            "is given administrator access "
            f"by {source}: {quoted}."
        ),
        chain=(*chain,),
        fix=(
            f"Detach {source} from {target.name}; grant only the model's S3 artifacts, ECR image, CloudWatch "
            "Logs and KMS key (e.g. a scoped inline policy)."
        ),
        evidence={"perimeter/statement": quoted},
    )


def principal_resource(target: Principal, source: str = "") -> Any:
    """The finding resource of a role, user or managed policy (one finding per principal)."""
    details = {"Name": target.name, **({"Source": source} if source else {})}
    return arn_resource(target.asff_type, target.arn, f"{target.kind}/{target.name}", details)


def trust_issue(target: Principal) -> Issue | None:
    """A model execution role that anyone may assume (``"Principal": "*"`` or ``{"AWS": "*"}``
    in an Allow statement without conditions): whoever assumes it runs as the model."""
    if target.kind != "role" or not is_model_execution_role(target.trust):
        return None
    anyone = wildcard_principals(target.trust)
    if not anyone:
        return None
    return Issue(
        control_id="PER-IAM-1",
        resource=arn_resource(
            "AwsIamRole", target.arn, f"role/{target.name}", {"Name": target.name, "Source": "trust policy"}
        ),
        score=90,
        reasons=("any AWS principal may assume a model execution role (+90)",),
        summary=(
            f"Model execution role {target.name} (assumed by SageMaker/Bedrock) trusts any principal "
            f"without a condition: {'; '.join(anyone)}."
        ),
        chain=(f"trust policy of role {target.name}", f"role {target.name}"),
        fix=(
            f"aws iam update-assume-role-policy --role-name {target.name} --policy-document <trust naming "
            "only sagemaker.amazonaws.com / bedrock.amazonaws.com and the accounts or roles that deploy "
            "the model, with aws:SourceAccount / aws:SourceArn conditions>"
        ),
        evidence={"perimeter/statement": anyone[0]},
    )


#: A group's policies as a member user inherits them: (group name, inline, attached).
GroupPolicies = tuple[
    str, Sequence[tuple[str, Mapping[str, Any]]], Sequence[tuple[str, Mapping[str, Any] | None]]
]


def principal_issues(
    target: Principal,
    *,
    inline: Sequence[tuple[str, Mapping[str, Any]]],
    attached: Sequence[tuple[str, Mapping[str, Any] | None]],
    groups: Sequence[GroupPolicies] = (),
) -> list[Issue]:
    """PER-IAM-1 on a role, user or group's whole current state: every inline policy and every
    attached managed policy (``None`` document: an AWS managed admin policy known by ARN, or a
    policy that could not be read), a user's groups' policies (a member holds them), a role's
    trust policy. ``merge_issues`` makes them one finding."""
    out: list[Issue] = []
    own = (f"{target.kind} {target.name}",)
    sources: list[tuple[str, Mapping[str, Any] | None, bool, tuple[str, ...]]] = [
        (f"inline policy {name} on {target.kind} {target.name}", doc, False, own) for name, doc in inline
    ]
    sources += [(f"managed policy {arn}", doc, arn in ADMIN_POLICY_ARNS, own) for arn, doc in attached]
    for group, g_inline, g_attached in groups:
        via = (f"group {group}", f"{target.kind} {target.name} (member)")
        sources += [(f"inline policy {name} on group {group}", doc, False, via) for name, doc in g_inline]
        sources += [
            (f"managed policy {arn} on group {group}", doc, arn in ADMIN_POLICY_ARNS, via)
            for arn, doc in g_attached
        ]
    for source, doc, known_admin, tail in sources:
        chain = (source, *tail)
        if doc is not None:
            out.extend(invoke_issues(doc, target, source=source, chain=chain))
        admin_stmt = next((s for s in statements(doc or {}) if is_admin(s)), None)
        if admin_stmt is not None or known_admin:
            issue = admin_issue(target, source=source, statement=admin_stmt, chain=chain)
            if issue:
                out.append(issue)
    trust = trust_issue(target)
    if trust is not None:
        out.append(trust)
    return out


def resource_policy_issue(doc: Mapping[str, Any], resource_arn: str) -> Issue | None:
    """A Bedrock resource policy (custom model, guardrail) with an Allow statement whose
    principal is anyone (``"*"`` or ``{"AWS": "*"}``) and which no condition narrows: every AWS
    account may use the resource."""
    anyone = wildcard_principals(doc)
    if not anyone:
        return None
    invoke = any(
        invoke_actions(s) or any(str(a) in ("*", "bedrock:*") for a in _as_list(s.get("Action")))
        for s in (json.loads(a) for a in anyone)
    )
    name = resource_arn.split(":", 5)[-1]
    return Issue(
        control_id="PER-IAM-1",
        resource=arn_resource("Other", resource_arn, name, {"ResourcePolicy": "bedrock"}),
        score=85 if invoke else 65,
        reasons=(
            "a resource policy grants any AWS principal without a condition (+65)",
            *(("it grants model invocation (+20)",) if invoke else ()),
        ),
        summary=(
            f"The resource policy of {resource_arn} lets any AWS principal in: " + "; ".join(anyone) + "."
        ),
        chain=(f"resource policy of {name}",),
        fix=(
            f"aws bedrock put-resource-policy --resource-arn {resource_arn} with named principals (accounts, "
            "roles) or an aws:PrincipalOrgID / aws:SourceAccount condition; or delete-resource-policy."
        ),
        evidence={"perimeter/statement": anyone[0]},
    )
