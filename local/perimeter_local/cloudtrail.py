"""Build the CloudTrail records AWS would write for calls made against the embedded account.

moto keeps no CloudTrail, so the demo, the benchmark and the end-to-end tests make a change
through the real API, then describe what CloudTrail would have recorded for it, in the wire
format of the real records in the corpus (``ipPermissions.items``, ``securityGroupRuleSet``,
the wrapped ``ModifySecurityGroupRulesRequest``), and wrap it in the EventBridge envelope.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from perimeter.core.events import wrap_in_envelope

DEFAULT_ACTOR_ARN = "arn:aws:sts::{account}:assumed-role/ml-platform-engineer/dana"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_identity(account: str, arn: str | None = None) -> dict[str, Any]:
    arn = arn or DEFAULT_ACTOR_ARN.format(account=account)
    identity: dict[str, Any] = {"arn": arn, "accountId": account, "principalId": "AROAEXAMPLE:session"}
    if ":assumed-role/" in arn:
        role = arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
        identity["type"] = "AssumedRole"
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"mfaAuthenticated": "false", "creationDate": _now()},
        }
    else:
        identity["type"] = "IAMUser"
        identity["userName"] = arn.rsplit("/", 1)[-1]
    return identity


def record(
    event_name: str,
    event_source: str,
    request: Mapping[str, Any],
    response: Mapping[str, Any] | None,
    *,
    account: str,
    region: str,
    actor_arn: str | None = None,
    error_code: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": user_identity(account, actor_arn),
        "eventTime": _now(),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "perimeter-local",
        "requestParameters": dict(request),
        "responseElements": dict(response) if response is not None else None,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        rec["errorCode"] = error_code
        rec["errorMessage"] = "simulated failure"
        rec["responseElements"] = None
    return rec


def _ct_permission(perm: Mapping[str, Any]) -> dict[str, Any]:
    """An API ``IpPermissions`` entry in CloudTrail's lower-camel ``items`` form."""
    out: dict[str, Any] = {"ipProtocol": perm["IpProtocol"]}
    if "FromPort" in perm:
        out["fromPort"] = perm["FromPort"]
        out["toPort"] = perm.get("ToPort", perm["FromPort"])

    def wrap(key: str, inner: str, ct_inner: str) -> dict[str, Any]:
        entries = []
        for r in perm.get(key, []):
            e = {ct_inner: r[inner]}
            if r.get("Description"):
                e["description"] = r["Description"]
            entries.append(e)
        return {"items": entries} if entries else {}

    out["ipRanges"] = wrap("IpRanges", "CidrIp", "cidrIp")
    out["ipv6Ranges"] = wrap("Ipv6Ranges", "CidrIpv6", "cidrIpv6")
    out["prefixListIds"] = wrap("PrefixListIds", "PrefixListId", "prefixListId")
    out["groups"] = wrap("UserIdGroupPairs", "GroupId", "groupId")
    return out


def _ct_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A ``SecurityGroupRule`` (API form) as CloudTrail's ``securityGroupRuleSet`` item."""
    out: dict[str, Any] = {
        "groupId": rule["GroupId"],
        "groupOwnerId": rule.get("GroupOwnerId"),
        "isEgress": rule.get("IsEgress", False),
        "ipProtocol": rule.get("IpProtocol"),
        "fromPort": rule.get("FromPort", -1),
        "toPort": rule.get("ToPort", -1),
        "securityGroupRuleId": rule["SecurityGroupRuleId"],
    }
    for api, ct in (("CidrIpv4", "cidrIpv4"), ("CidrIpv6", "cidrIpv6"), ("PrefixListId", "prefixListId")):
        if rule.get(api):
            out[ct] = rule[api]
    ref = rule.get("ReferencedGroupInfo")
    if ref:
        out["referencedGroupInfo"] = {"groupId": ref.get("GroupId"), "userId": ref.get("UserId")}
    if rule.get("Description"):
        out["description"] = rule["Description"]
    return out


def authorize_event(
    *,
    account: str,
    region: str,
    group_id: str,
    permissions: Sequence[Mapping[str, Any]],
    created_rules: Sequence[Mapping[str, Any]] | None,
    egress: bool = False,
    actor_arn: str | None = None,
    error_code: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event for an AuthorizeSecurityGroupIngress/Egress call.
    ``created_rules`` are the ``SecurityGroupRules`` AWS created (None: a record from before
    rule ids, without ``securityGroupRuleSet``)."""
    response: dict[str, Any] = {"requestId": str(uuid.uuid4()), "_return": True}
    if created_rules:
        response["securityGroupRuleSet"] = {"items": [_ct_rule(r) for r in created_rules]}
    name = "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress"
    rec = record(
        name,
        "ec2.amazonaws.com",
        {"groupId": group_id, "ipPermissions": {"items": [_ct_permission(p) for p in permissions]}},
        response,
        account=account,
        region=region,
        actor_arn=actor_arn,
        error_code=error_code,
        event_id=event_id,
    )
    return wrap_in_envelope(rec)


def modify_rules_event(
    *,
    account: str,
    region: str,
    group_id: str,
    rule_id: str,
    rule: Mapping[str, Any],
    actor_arn: str | None = None,
) -> dict[str, Any]:
    """ModifySecurityGroupRules in its real, wrapped form."""
    body = {k: {"tag": i + 1, "content": v} for i, (k, v) in enumerate(rule.items())}
    request = {
        "ModifySecurityGroupRulesRequest": {
            "GroupId": {"tag": 1, "content": group_id},
            "SecurityGroupRule": {
                "tag": 1,
                "SecurityGroupRuleId": {"tag": 1, "content": rule_id},
                "SecurityGroupRule": body,
            },
        }
    }
    response = {"ModifySecurityGroupRulesResponse": {"return": True}}
    return wrap_in_envelope(
        record(
            "ModifySecurityGroupRules",
            "ec2.amazonaws.com",
            request,
            response,
            account=account,
            region=region,
            actor_arn=actor_arn,
        )
    )


def create_group_event(
    *, account: str, region: str, group_id: str, name: str, vpc_id: str, tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {"groupName": name, "groupDescription": name, "vpcId": vpc_id}
    if tags:
        request["tagSpecificationSet"] = {
            "items": [
                {"resourceType": "security-group", "tags": [{"key": k, "value": v} for k, v in tags.items()]}
            ]
        }
    return wrap_in_envelope(
        record(
            "CreateSecurityGroup",
            "ec2.amazonaws.com",
            request,
            {"requestId": str(uuid.uuid4()), "_return": True, "groupId": group_id},
            account=account,
            region=region,
        )
    )
