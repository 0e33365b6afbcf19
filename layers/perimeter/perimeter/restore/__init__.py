"""Undo a remediation from its audit record: put back exactly what Perimeter removed.

One code path for the two ways in: ``perimeter restore`` (the CLI, a boto3 session) and the
Security Hub custom action's UndoFunction (``perimeter.restore.undo``, the function's ``Runtime``);
``session`` is anything with ``client(service)``.

Restoring re-creates the rules through the ordinary API, so CloudTrail records the restore and
Perimeter judges it again: ``perimeter.restore.undo`` writes a time-boxed exemption first, so the
restored rules are not revoked again while it lasts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError


class RestoreError(ValueError):
    """The record names nothing a restore knows how to put back, or lacks what it needs."""


def _authorize(call: Any, group_id: str, permissions: list[dict[str, Any]]) -> dict[str, Any]:
    restored, present = [], []
    for perm in permissions:
        try:
            call(GroupId=group_id, IpPermissions=[perm])
            restored.append(perm)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
                raise
            present.append(perm)
    return {"restored": restored, "already_present": present}


def restore(session: Any, record: Mapping[str, Any]) -> dict[str, Any]:
    action = record.get("action")
    if action == "revoke-security-group-rules":
        ec2 = session.client("ec2")
        group_id = record["group_id"]
        perms = record.get("restore", {})
        ingress = _authorize(ec2.authorize_security_group_ingress, group_id, perms.get("ingress", []))
        egress = _authorize(ec2.authorize_security_group_egress, group_id, perms.get("egress", []))
        return {
            "audit_id": record["audit_id"],
            "group_id": group_id,
            "ingress": ingress,
            "egress": egress,
            "warning": "Perimeter revokes these again once no exemption covers them.",
        }
    if action == "delete-security-group":
        from perimeter.restore.group import restore_deleted_group

        return restore_deleted_group(session, record)
    if action == "create-flow-log":
        from perimeter.restore.flowlog import restore_flow_log

        return dict(restore_flow_log(session, record))
    if action and str(action).startswith("default-sg-"):
        from perimeter.restore.dsg import restore_default_sg_migration

        return dict(restore_default_sg_migration(session, record))
    raise RestoreError(f"audit record {record.get('audit_id')} has no restore for action {action!r}")
