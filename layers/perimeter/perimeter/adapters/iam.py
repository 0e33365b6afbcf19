"""IAM adapter: the role a policy lands on (trust policy) and a managed policy's default text.

IAM is global; its CloudTrail events are delivered in us-east-1. A role or policy deleted
since the event is ``None`` (``NoSuchEntity``): the grant is moot, the event a clean no-op.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code
from perimeter.iam_eval import Principal, parse_document


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
