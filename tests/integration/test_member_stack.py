"""member.yaml (organization mode's member stack) held to the security stack and to the code.

- its remediation role grants exactly the union of what the functions call in an account
  (``permissions.member_role_actions()``), as test_least_privilege holds each function's role;
- it forwards every call the security stack routes, each call by exactly one rule, to the bus
  the security stack creates, whose policy admits the organization only;
- its trust policy lets in the security stack's function roles, with the external id, and no one
  else: not another member account's roles, not another role of the security account.

The trust policy is judged by ``_trust_allows`` below, IAM's documented evaluation for what the
document uses (an account principal, StringEquals, ArnEquals/ArnLike on aws:PrincipalArn); an
operator it does not know fails the test rather than being ignored. moto is not used for this:
with IAM checks on (``INITIAL_NO_AUTH_ACTION_COUNT``) moto 5.2.5 compares a trust principal to
the caller's ARN literally (an account's ``:root`` never matches a role of that account) and
evaluates only StringEquals conditions, ignoring ArnEquals, so it can judge neither way here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from perimeter.core import accounts, permissions
from perimeter_local.template import Resolver, load_template

from tests.integration.test_least_privilege import _actions  # every action, both branches of Fn::If

ROOT = Path(__file__).resolve().parents[2]
MEMBER = load_template(ROOT / "member.yaml")
TEMPLATE = load_template(ROOT / "template.yaml")
SECURITY, B, C = "210987654321", "222222222222", "333333333333"
STACK, HOME = "perimeter", "us-east-1"
EXTERNAL_ID = "example-external-id"
ORG_ID = "o-exampleorg1"
MEMBER_PARAMS = {
    "SecurityAccountId": SECURITY,
    "SecurityStackName": STACK,
    "SecurityRegion": HOME,
    "EventBusArn": f"arn:aws:events:{HOME}:{SECURITY}:event-bus/{STACK}-organization",
    "ExternalId": EXTERNAL_ID,
    "MemberRoleName": "perimeter-remediation",
}


def _resolve(template: Mapping[str, Any], params: Mapping[str, str], account: str, region: str) -> Resolver:
    pseudo = {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::StackName": STACK,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    r = Resolver(dict(template), dict(params), pseudo)
    for logical_id, res in template["Resources"].items():
        name = res.get("Properties", {}).get("RoleName")
        if res["Type"] == "AWS::IAM::Role" and name is not None:
            rn = r.resolve(name)
            r.physical[logical_id] = {"Ref": rn, "Arn": f"arn:aws:iam::{account}:role/{rn}"}
        elif res["Type"] == "AWS::Logs::LogGroup":
            g = r.resolve(res["Properties"]["LogGroupName"])
            r.physical[logical_id] = {"Ref": g, "Arn": f"arn:aws:logs:{region}:{account}:log-group:{g}:*"}
        else:
            r.physical[logical_id] = {"Ref": logical_id, "Arn": f"arn:aws:x:{region}:{account}:{logical_id}"}
    return r


def test_the_remediation_role_grants_exactly_the_union_of_what_the_functions_call() -> None:
    role = MEMBER["Resources"]["RemediationRole"]["Properties"]
    granted = _actions(role["Policies"])
    assert granted == set(permissions.member_role_actions())
    # nothing of Perimeter's own stores (they stay in the security account)
    assert not {a for a in granted if a.split(":")[0] in {"dynamodb", "sns", "ssm", "sqs"}}


def _routed(template: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    out = set()
    for res in template["Resources"].values():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for ev in res["Properties"].get("Events", {}).values():
            p = ev["Properties"].get("Pattern", {}) if ev["Type"] == "EventBridgeRule" else {}
            if p.get("detail-type") == ["AWS API Call via CloudTrail"]:
                out |= _calls(p)
    return out


def _calls(p: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """(source, eventSource, eventName) a pattern matches; a CloudTrail event's source is always
    its eventSource's service (aws.ec2 with ec2.amazonaws.com)."""
    return {
        (s, es, n)
        for s in p["source"]
        for es in p["detail"]["eventSource"]
        if s.split(".", 1)[1] == es.split(".", 1)[0]
        for n in p["detail"]["eventName"]
    }


def test_every_routed_call_is_forwarded_once_to_the_security_bus() -> None:
    forwarded: list[tuple[str, str, str]] = []
    r = _resolve(MEMBER, MEMBER_PARAMS, B, "eu-west-1")
    for res in MEMBER["Resources"].values():
        if res["Type"] != "AWS::Events::Rule":
            continue
        p = res["Properties"]["EventPattern"]
        assert p["detail-type"] == ["AWS API Call via CloudTrail"]
        assert p["detail"]["errorCode"] == [{"exists": False}]  # failed calls are not forwarded
        forwarded += sorted(_calls(p))
        (target,) = res["Properties"]["Targets"]
        assert r.resolve(target["Arn"]) == MEMBER_PARAMS["EventBusArn"]
        assert (
            r.resolve(target["RoleArn"]) == f"arn:aws:iam::{B}:role/perimeter-remediation-forward-eu-west-1"
        )
    assert len(forwarded) == len(set(forwarded)), "a call forwarded twice reaches the functions twice"
    assert set(forwarded) == _routed(TEMPLATE)
    forward = MEMBER["Resources"]["ForwardRole"]["Properties"]
    assert _actions(forward["Policies"]) == {"events:PutEvents"}


def test_the_security_stack_puts_its_rules_on_the_organization_bus_in_organization_mode() -> None:
    for params, bus in (({"Mode": "organization"}, f"{STACK}-organization"), ({}, "default")):
        r = _resolve(TEMPLATE, params, SECURITY, HOME)
        r.physical["OrganizationEventBus"] = {"Ref": f"{STACK}-organization"}
        for res in TEMPLATE["Resources"].values():
            for ev in (
                res.get("Properties", {}).get("Events", {}).values()
                if res["Type"] == "AWS::Serverless::Function"
                else ()
            ):
                if ev["Type"] != "EventBridgeRule":
                    continue
                if ev["Properties"]["Pattern"].get("detail-type") == ["AWS API Call via CloudTrail"]:
                    assert r.resolve(ev["Properties"]["EventBusName"]) == bus
                else:
                    # the Security Hub custom action: the security account's own hub, default bus
                    assert "EventBusName" not in ev["Properties"]
    policy = TEMPLATE["Resources"]["OrganizationEventBusPolicy"]
    assert policy["Condition"] == "IsOrganization"
    st = policy["Properties"]["Statement"]
    assert st["Action"] == "events:PutEvents" and st["Principal"] == "*"
    assert st["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


# ---------------------------------------------------------------- who may assume the role


def _match_principal(expected: Any, caller_arn: str) -> bool:
    """IAM: an account's ``:root`` principal stands for every principal of that account (its own
    identity policies then decide); a role ARN stands for that role's sessions."""
    caller_account = caller_arn.split(":")[4]
    for p in expected if isinstance(expected, list) else [expected]:
        if p == "*" or p == caller_arn:
            return True
        if p.endswith(":root") and p.split(":")[4] == caller_account:
            return True
    return False


def _condition_holds(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for op, keys in conditions.items():
        for key, expected in keys.items():
            values = expected if isinstance(expected, list) else [expected]
            actual = context.get(key)
            if actual is None:
                return False
            if op in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif op == "ArnLike":
                ok = any(fnmatch.fnmatchcase(actual, v) for v in values)
            else:
                raise AssertionError(f"the evaluator does not know {op}: teach it before relying on it")
            if not ok:
                return False
    return True


def _trust_allows(role: Mapping[str, Any], caller_role_arn: str, external_id: str | None) -> bool:
    context = {"aws:PrincipalArn": caller_role_arn}
    if external_id is not None:
        context["sts:ExternalId"] = external_id
    allowed = False
    for st in role["AssumeRolePolicyDocument"]["Statement"]:
        if st.get("Action") not in ("sts:AssumeRole", ["sts:AssumeRole"]):
            continue
        hit = _match_principal(st["Principal"].get("AWS", []), caller_role_arn) and _condition_holds(
            st.get("Condition", {}), context
        )
        if hit and st["Effect"] == "Deny":
            return False
        allowed = allowed or (hit and st["Effect"] == "Allow")
    return allowed


def _remediation_role(params: Mapping[str, str], account: str, region: str) -> dict[str, Any]:
    r = _resolve(MEMBER, params, account, region)
    return r.resolve(MEMBER["Resources"]["RemediationRole"]["Properties"])


def _function_roles() -> dict[str, str]:
    """The security stack's role ARNs of the functions that act in member accounts, as
    template.yaml names them (UndoFunction acts in the security account only)."""
    r = _resolve(TEMPLATE, {"Mode": "organization"}, SECURITY, HOME)
    out = {}
    for fid, res in TEMPLATE["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function" and fid in permissions.MEMBER_ACTING:
            role_id = res["Properties"]["Role"]["Fn::GetAtt"][0]
            out[role_id] = r.get_att(role_id, "Arn")
    return out


def test_every_function_role_of_the_security_stack_may_assume_the_member_role() -> None:
    role = _remediation_role(MEMBER_PARAMS, B, "eu-west-1")
    assert role["RoleName"] == accounts.member_role_name("perimeter-remediation", "eu-west-1")
    roles = _function_roles()
    assert len(roles) == len(permissions.MEMBER_ACTING) == 7
    for arn in roles.values():
        assert _trust_allows(role, arn, EXTERNAL_ID), arn


@pytest.mark.parametrize(
    ("caller", "external_id"),
    [
        (f"arn:aws:iam::{SECURITY}:role/{STACK}-sg-guard-{HOME}", "wrong"),
        (f"arn:aws:iam::{SECURITY}:role/{STACK}-sg-guard-{HOME}", None),
        # another member's remediation role (member C reaching member B)
        (f"arn:aws:iam::{C}:role/perimeter-remediation-eu-west-1", EXTERNAL_ID),
        # a role in member C named like a function role of the security stack
        (f"arn:aws:iam::{C}:role/{STACK}-sg-guard-{HOME}", EXTERNAL_ID),
        # B's own roles
        (f"arn:aws:iam::{B}:role/{STACK}-sg-guard-{HOME}", EXTERNAL_ID),
        # another role of the security account
        (f"arn:aws:iam::{SECURITY}:role/developer", EXTERNAL_ID),
        # the security stack of another region is another stack
        (f"arn:aws:iam::{SECURITY}:role/{STACK}-sg-guard-eu-west-1", EXTERNAL_ID),
    ],
    ids=[
        "wrong-external-id",
        "no-external-id",
        "member-c-remediation",
        "member-c-lookalike",
        "member-b-own",
        "security-other-role",
        "security-other-region",
    ],
)
def test_no_one_else_may_assume_the_member_role(caller: str, external_id: str | None) -> None:
    role = _remediation_role(MEMBER_PARAMS, B, "eu-west-1")
    assert not _trust_allows(role, caller, external_id)


def test_the_operator_may_assume_it_only_when_named() -> None:
    operator = f"arn:aws:iam::{SECURITY}:role/security-operations"
    assert not _trust_allows(_remediation_role(MEMBER_PARAMS, B, HOME), operator, EXTERNAL_ID)
    with_op = {**MEMBER_PARAMS, "OperatorPrincipalArn": operator}
    assert _trust_allows(_remediation_role(with_op, B, HOME), operator, EXTERNAL_ID)


def test_the_function_roles_may_assume_only_member_roles_of_the_organization() -> None:
    """The identity side: template.yaml's AssumeMemberRole statement names the member role's ARN
    pattern (what ``perimeter.core.accounts`` assumes) and requires the role's account to be in the
    organization (aws:ResourceOrgID)."""
    params = {"Mode": "organization", "OrganizationId": ORG_ID, "MemberRoleName": "perimeter-remediation"}
    r = _resolve(TEMPLATE, params, SECURITY, HOME)
    for role_id in _function_roles():
        statements = r.resolve(TEMPLATE["Resources"][role_id]["Properties"]["Policies"])[0]["PolicyDocument"]
        (st,) = [s for s in statements["Statement"] if s.get("Sid") == "AssumeMemberRole"]
        assert st["Action"] == ["sts:AssumeRole"]
        assert st["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG_ID}}
        target = accounts.member_role_arn("aws", B, "perimeter-remediation", "eu-west-1")
        assert fnmatch.fnmatchcase(target, st["Resource"])
        assert not fnmatch.fnmatchcase(f"arn:aws:iam::{B}:role/admin", st["Resource"])
    flow = _resolve(MEMBER, MEMBER_PARAMS, B, "eu-west-1").resolve(
        MEMBER["Resources"]["FlowLogDeliveryRole"]["Properties"]
    )
    assert flow["RoleName"] == accounts.member_role_name("perimeter-remediation-flow-logs", "eu-west-1")
