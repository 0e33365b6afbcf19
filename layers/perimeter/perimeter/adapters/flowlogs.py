"""Flow-log adapter (EC2 + CloudWatch Logs): read a VPC's flow logs, create one.

Outcomes, not errors: a VPC that no longer exists is ``False`` from ``vpc_exists``;
``FlowLogAlreadyExists`` on create (a retry, or a twin made between our read and our write)
is success. The log group gets its retention set explicitly every time Perimeter creates a
flow log into it, so no flow log of ours ever lands in a group that keeps data forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code
from perimeter.flow_logs.evaluate import FlowLog, flow_log_from_api

VPC_GONE = {"InvalidVpcID.NotFound", "InvalidVpcID.Malformed"}


@dataclass(frozen=True, slots=True)
class CreateResult:
    flow_log_ids: tuple[str, ...]
    already_existed: bool


class FlowLogError(RuntimeError):
    """CreateFlowLogs refused for a reason other than the flow log already existing."""


class FlowLogAdapter:
    def __init__(self, ec2: Any, logs: Callable[[], Any]) -> None:
        self._ec2 = ec2
        self._logs = logs  # built only on the create path

    def vpc_exists(self, vpc_id: str) -> bool:
        try:
            resp = self._ec2.describe_vpcs(VpcIds=[vpc_id])
        except ClientError as exc:
            if error_code(exc) in VPC_GONE:
                return False
            raise
        return bool(resp.get("Vpcs"))

    def vpc_ids(self) -> list[str]:
        out: list[str] = []
        for page in self._ec2.get_paginator("describe_vpcs").paginate():
            out.extend(v["VpcId"] for v in page.get("Vpcs", []))
        return out

    def flow_logs(self, vpc_ids: Iterable[str]) -> dict[str, list[FlowLog]]:
        """Flow logs attached to these VPCs (one paginated call, up to 200 ids per filter)."""
        ids = list(dict.fromkeys(vpc_ids))
        out: dict[str, list[FlowLog]] = {v: [] for v in ids}
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            paginator = self._ec2.get_paginator("describe_flow_logs")
            for page in paginator.paginate(Filters=[{"Name": "resource-id", "Values": chunk}]):
                for raw in page.get("FlowLogs", []):
                    fl = flow_log_from_api(raw)
                    if fl.resource_id in out:
                        out[fl.resource_id].append(fl)
        return out

    def create(self, params: Mapping[str, Any], *, retention_days: int) -> CreateResult:
        if params.get("LogDestinationType") == "cloud-watch-logs":
            self._ensure_log_group(str(params["LogGroupName"]), retention_days)
        try:
            resp = self._ec2.create_flow_logs(**params)
        except ClientError as exc:
            if error_code(exc) == "FlowLogAlreadyExists":
                return CreateResult((), True)
            raise
        failed = resp.get("Unsuccessful") or []
        codes = {str(u.get("Error", {}).get("Code", "")) for u in failed}
        if failed and codes != {"FlowLogAlreadyExists"}:
            detail = "; ".join(f"{u.get('ResourceId')}: {u.get('Error', {}).get('Message')}" for u in failed)
            raise FlowLogError(f"CreateFlowLogs failed: {detail}")
        return CreateResult(tuple(resp.get("FlowLogIds") or ()), bool(failed))

    def _ensure_log_group(self, name: str, retention_days: int) -> None:
        logs = self._logs()
        try:
            logs.create_log_group(logGroupName=name)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)

    def model_vpcs(self, tag_key: str, values: Iterable[str]) -> set[str]:
        """VPCs holding a security group tagged as the model tier (one filtered listing)."""
        out: set[str] = set()
        filters = [{"Name": f"tag:{tag_key}", "Values": sorted(values)}]
        for page in self._ec2.get_paginator("describe_security_groups").paginate(Filters=filters):
            out.update(g["VpcId"] for g in page.get("SecurityGroups", []) if g.get("VpcId"))
        return out


class FlowLogIndex:
    """Which VPC each flow log covered, kept because a DeleteFlowLogs record names only the
    flow-log id and a deleted flow log can no longer be described. Written whenever Perimeter
    sees a flow log made (CreateFlowLogs events, its own creations; the sweep may add what it
    lists); read on DeleteFlowLogs. One item per flow log: ``pk = flowlog#<id>``."""

    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    def remember(self, flow_log_id: str, resource_id: str, *, seen: str, source: str) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"flowlog#{flow_log_id}"},
                "resource_id": {"S": resource_id},
                "seen": {"S": seen},
                "source": {"S": source},
            },
        )

    def resources_of(self, flow_log_ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for fl in dict.fromkeys(flow_log_ids):
            item = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": f"flowlog#{fl}"}}).get("Item")
            if item and "resource_id" in item:
                out[fl] = item["resource_id"]["S"]
        return out
