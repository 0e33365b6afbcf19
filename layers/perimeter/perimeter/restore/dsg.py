"""Undo a default-SG migration from its audit record (``perimeter restore <audit id>``).

The order is the migration's in reverse, and again no ENI is ever without a group: first the
default SG gets its rules back (so an ENI returning to it finds its traffic), then every ENI
gets back exactly the groups the record lists from before the migration (one call, which
never names an empty list), and last the interim and quarantine groups Perimeter created are
deleted if nobody uses them any more. Every step tolerates having been done already, so a
restore can itself be repeated.

Add a policy exemption first (PER-DSG-1/2 for the VPC), or the next event moves them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from perimeter.core.rules import Rule
from perimeter.restore import RestoreError

ACTION = "default-sg-migration"
_ENI_GONE = {"InvalidNetworkInterfaceID.NotFound", "InvalidNetworkInterfaceId.NotFound"}
_GROUP_GONE = {"InvalidGroup.NotFound", "InvalidGroupId.NotFound"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _authorize(ec2: Any, group_id: str, rules: list[Rule]) -> list[str]:
    """Put rules back one at a time: a rule already there is not an error."""
    restored = []
    for rule in rules:
        call = ec2.authorize_security_group_egress if rule.egress else ec2.authorize_security_group_ingress
        try:
            call(GroupId=group_id, IpPermissions=[rule.to_permission()])
        except ClientError as exc:
            if _code(exc) != "InvalidPermission.Duplicate":
                raise
            continue
        restored.append(rule.describe())
    return restored


def _delete_if_unused(ec2: Any, group: Mapping[str, Any] | None) -> str | None:
    if not group or not group.get("group_id") or not group.get("created"):
        return None
    gid = str(group["group_id"])
    users = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [gid]}])
    if users.get("NetworkInterfaces"):
        return None
    try:
        ec2.delete_security_group(GroupId=gid)
    except ClientError as exc:
        if _code(exc) in _GROUP_GONE:
            return None
        raise
    return gid


def restore_default_sg_migration(session: Any, audit_record: Mapping[str, Any]) -> dict[str, Any]:
    """Restore the state a default-SG migration record describes.

    Parameters:
        session: a boto3 Session for the record's account (its region is taken from the record).
        audit_record: the record as ``AuditAdapter.get`` returns it.

    Returns:
        What was done: rules put back, ENIs restored (and those already gone), groups deleted.

    Raises:
        RestoreError: the record is not a default-SG migration.
    """
    if audit_record.get("action") != ACTION:
        raise RestoreError(f"audit record {audit_record.get('audit_id')!r} is not a default-SG migration")
    default_id = audit_record.get("default_group_id")
    if not default_id:
        raise RestoreError("audit record lacks default_group_id")
    region = audit_record.get("region")
    # A boto3 session (the CLI) may be for another region; a Runtime's clients are its own.
    ec2 = (
        session.client("ec2", region_name=region)
        if region and hasattr(session, "region_name")
        else session.client("ec2")
    )
    rules = [Rule.from_dict({**r, "group_id": default_id}) for r in audit_record.get("default_rules", [])]
    restored_rules = _authorize(ec2, str(default_id), rules)
    restored, gone = [], []
    for eni_id, entry in sorted(audit_record.get("enis", {}).items()):
        before = [str(g) for g in entry.get("before", [])]
        if not before:
            continue  # never leave an ENI without a group, whatever the record says
        try:
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=before)
        except ClientError as exc:
            if _code(exc) in _ENI_GONE:
                gone.append(eni_id)
                continue
            raise
        restored.append(eni_id)
    deleted = [
        gid
        for gid in (
            _delete_if_unused(ec2, audit_record.get("interim")),
            _delete_if_unused(ec2, audit_record.get("quarantine")),
        )
        if gid
    ]
    return {
        "audit_id": audit_record.get("audit_id"),
        "default_group_id": default_id,
        "rules_restored": restored_rules,
        "enis_restored": restored,
        "enis_gone": gone,
        "groups_deleted": deleted,
    }
