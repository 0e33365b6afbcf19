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
from perimeter.flowlog_eval import FlowLog, flow_log_from_api

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
