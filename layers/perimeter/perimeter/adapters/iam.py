"""IAM adapter: the role a policy lands on (trust policy) and a managed policy's default text.

IAM is global; its CloudTrail events are delivered in us-east-1. A role or policy deleted
since the event is ``None`` (``NoSuchEntity``): the grant is moot, the event a clean no-op.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code
from perimeter.iam.evaluate import Principal, parse_document


def _doc(value: Any) -> dict[str, Any]:
    # boto3 decodes IAM documents into dicts; a raw client or a proxy may leave them encoded.
    if isinstance(value, dict):
        return value
    return parse_document(urllib.parse.unquote(str(value)))


class IamAdapter:
    def __init__(self, client: Any) -> None:
        self._iam = client

    def role(self, name: str) -> Principal | None:
        try:
            r = self._iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return Principal("role", r["RoleName"], r["Arn"], _doc(r.get("AssumeRolePolicyDocument") or "{}"))

    def policy_document(self, arn: str) -> dict[str, Any] | None:
        try:
            version = self._iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            doc = self._iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return _doc(doc)

    def roles_with_policy(self, arn: str) -> list[str]:
        names: list[str] = []
        paginator = self._iam.get_paginator("list_entities_for_policy")
        try:
            for page in paginator.paginate(PolicyArn=arn, EntityFilter="Role"):
                names.extend(r["RoleName"] for r in page.get("PolicyRoles", []))
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return []
            raise
        return names

    # --- a principal's whole current state -------------------------------------------------

    def _pages(self, op: str, key: str, **kwargs: Any) -> list[Any] | None:
        """Every item of a paginated listing; ``None`` when the principal no longer exists."""
        out: list[Any] = []
        try:
            for page in self._iam.get_paginator(op).paginate(**kwargs):
                out.extend(page.get(key, []))
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return out

    def inline_policies(self, kind: str, name: str) -> list[tuple[str, dict[str, Any]]] | None:
        """``(policy name, document)`` of every inline policy of a role, user or group (None: gone)."""
        list_op, get_op, arg = {
            "role": ("list_role_policies", "get_role_policy", "RoleName"),
            "user": ("list_user_policies", "get_user_policy", "UserName"),
            "group": ("list_group_policies", "get_group_policy", "GroupName"),
        }[kind]
        names = self._pages(list_op, "PolicyNames", **{arg: name})
        if names is None:
            return None
        out = []
        for policy_name in names:
            try:
                resp = getattr(self._iam, get_op)(**{arg: name, "PolicyName": policy_name})
            except ClientError as exc:
                if error_code(exc) == "NoSuchEntity":
                    continue  # deleted between the listing and the read
                raise
            out.append((policy_name, _doc(resp.get("PolicyDocument") or "{}")))
        return out

    def attached_policies(self, kind: str, name: str) -> list[str] | None:
        """ARNs of the managed policies attached to a role, user or group (None: gone)."""
        op, arg = {
            "role": ("list_attached_role_policies", "RoleName"),
            "user": ("list_attached_user_policies", "UserName"),
            "group": ("list_attached_group_policies", "GroupName"),
        }[kind]
        found = self._pages(op, "AttachedPolicies", **{arg: name})
        return None if found is None else [str(p["PolicyArn"]) for p in found]

    def user(self, name: str) -> Principal | None:
        try:
            u = self._iam.get_user(UserName=name)["User"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return Principal("user", u["UserName"], u["Arn"])

    def entities_with_policy(self, arn: str) -> tuple[list[str], list[str], list[str]]:
        """(role names, user names, group names) the managed policy is attached to."""
        roles: list[str] = []
        users: list[str] = []
        groups: list[str] = []
        paginator = self._iam.get_paginator("list_entities_for_policy")
        try:
            for page in paginator.paginate(PolicyArn=arn):
                roles.extend(r["RoleName"] for r in page.get("PolicyRoles", []))
                users.extend(u["UserName"] for u in page.get("PolicyUsers", []))
                groups.extend(g["GroupName"] for g in page.get("PolicyGroups", []))
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return [], [], []
            raise
        return roles, users, groups

    def account_details(self) -> AccountDetails:
        """Every role, user and group with its inline policies and attached policy ARNs, each
        user's groups, and every customer managed policy's default version: one paginated
        GetAccountAuthorizationDetails (the sweep's read; the event path reads one principal at
        a time)."""
        out = AccountDetails()
        paginator = self._iam.get_paginator("get_account_authorization_details")
        for page in paginator.paginate(Filter=["Role", "User", "Group", "LocalManagedPolicy"]):
            for r in page.get("RoleDetailList", []):
                out.roles.append(
                    (
                        Principal(
                            "role", r["RoleName"], r["Arn"], _doc(r.get("AssumeRolePolicyDocument") or "{}")
                        ),
                        [
                            (p["PolicyName"], _doc(p.get("PolicyDocument") or "{}"))
                            for p in r.get("RolePolicyList", [])
                        ],
                        [str(p["PolicyArn"]) for p in r.get("AttachedManagedPolicies", [])],
                    )
                )
            for u in page.get("UserDetailList", []):
                out.users.append(
                    (
                        Principal("user", u["UserName"], u["Arn"]),
                        [
                            (p["PolicyName"], _doc(p.get("PolicyDocument") or "{}"))
                            for p in u.get("UserPolicyList", [])
                        ],
                        [str(p["PolicyArn"]) for p in u.get("AttachedManagedPolicies", [])],
                    )
                )
                out.user_groups[str(u["UserName"])] = [str(g) for g in u.get("GroupList", [])]
            for g in page.get("GroupDetailList", []):
                out.groups.append(
                    (
                        Principal("group", g["GroupName"], g["Arn"]),
                        [
                            (p["PolicyName"], _doc(p.get("PolicyDocument") or "{}"))
                            for p in g.get("GroupPolicyList", [])
                        ],
                        [str(p["PolicyArn"]) for p in g.get("AttachedManagedPolicies", [])],
                    )
                )
            for pol in page.get("Policies", []):
                default = next(
                    (v for v in pol.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None
                )
                if default is not None:
                    arn = str(pol["Arn"])
                    out.policies[arn] = (
                        # the ARN ends with the name (moto 5.2.5 omits PolicyName here)
                        str(pol.get("PolicyName") or arn.rsplit("/", 1)[-1]),
                        _doc(default.get("Document") or "{}"),
                    )
        return out

    # --- groups: a user holds its groups' policies too ----------------------------------------

    def group(self, name: str) -> tuple[Principal, list[str]] | None:
        """The group and its member user names (None: the group no longer exists)."""
        head: dict[str, Any] = {}
        users: list[str] = []
        try:
            for page in self._iam.get_paginator("get_group").paginate(GroupName=name):
                head = head or page["Group"]  # every page repeats the group itself
                users.extend(str(u["UserName"]) for u in page.get("Users", []))
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return Principal("group", str(head["GroupName"]), str(head["Arn"])), users

    def groups_of_user(self, name: str) -> list[str] | None:
        """Names of the groups a user belongs to (None: the user is gone)."""
        found = self._pages("list_groups_for_user", "Groups", UserName=name)
        return None if found is None else [str(g["GroupName"]) for g in found]


@dataclass
class AccountDetails:
    """What GetAccountAuthorizationDetails tells: (principal, inline ``(name, document)``,
    attached ARNs) per role, user and group; each user's group names; customer managed
    policies' default documents by ARN."""

    roles: list[tuple[Principal, list[tuple[str, dict[str, Any]]], list[str]]] = field(default_factory=list)
    users: list[tuple[Principal, list[tuple[str, dict[str, Any]]], list[str]]] = field(default_factory=list)
    groups: list[tuple[Principal, list[tuple[str, dict[str, Any]]], list[str]]] = field(default_factory=list)
    user_groups: dict[str, list[str]] = field(default_factory=dict)
    policies: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
