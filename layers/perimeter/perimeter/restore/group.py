"""Undo PER-REV-1's deletion of an unused group: recreate it with its name, description, tags
and exactly its rules.

AWS gives the new group a new id and its default allow-all egress rule; that egress rule is
removed again when the deleted group did not have it, so the group comes back as it was. The
old id cannot come back: nothing used it (that is why it was deleted), so nothing named it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

ALL_EGRESS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def _has_default_egress(perms: list[Mapping[str, Any]]) -> bool:
    return any(
        p.get("IpProtocol") == "-1" and any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
        for p in perms
    )


def restore_deleted_group(session: Any, record: Mapping[str, Any]) -> dict[str, Any]:
    if record.get("status") not in ("deleted", None):
        return {"audit_id": record["audit_id"], "restored": False, "reason": f"status {record.get('status')}"}
    ec2 = session.client("ec2")
    g = record["group"]
    tags = [{"Key": k, "Value": v} for k, v in (g.get("tags") or {}).items()]
    params: dict[str, Any] = {"GroupName": g["name"], "Description": g["description"]}
    if g.get("vpc_id"):
        params["VpcId"] = g["vpc_id"]
    if tags:
        params["TagSpecifications"] = [{"ResourceType": "security-group", "Tags": tags}]
    try:
        new_id = ec2.create_security_group(**params)["GroupId"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidGroup.Duplicate":
            raise
        found = ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [g["vpc_id"]]},
                {"Name": "group-name", "Values": [g["name"]]},
            ]
        )["SecurityGroups"]
        new_id = found[0]["GroupId"]  # a retried restore: the first attempt's group
    ingress = list(record.get("restore", {}).get("ingress", []))
    egress = list(record.get("restore", {}).get("egress", []))
    if not _has_default_egress(egress):
        try:
            ec2.revoke_security_group_egress(GroupId=new_id, IpPermissions=[ALL_EGRESS])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidPermission.NotFound":
                raise
    from perimeter.restore import _authorize

    return {
        "audit_id": record["audit_id"],
        "deleted_group_id": record["group_id"],
        "group_id": new_id,
        "ingress": _authorize(ec2.authorize_security_group_ingress, new_id, ingress),
        "egress": _authorize(ec2.authorize_security_group_egress, new_id, egress),
        "warning": (
            "A new group id. Perimeter will report it unused again after the grace period "
            "unless something uses it or the policy exempts it."
        ),
    }
