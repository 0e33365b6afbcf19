"""PER-FL-1 judged and planned (pure): does a VPC have an active flow log of ALL traffic, and
what exactly would Perimeter create if not.

A flow log that exists but is inactive (delivery failing) or records only REJECT (or only
ACCEPT) traffic is named in the finding: it is the complaint users make about "compliant"
VPCs whose logs show nothing of the connections that matter. The created flow log records
ALL traffic in a custom format with ``flow-direction``, ``pkt-srcaddr``, ``pkt-dstaddr`` and
``traffic-path``, so traffic through a NAT or load balancer can still be traced to its source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perimeter.core.arns import ec2_arn
from perimeter.policy import FlowLogPolicy
from perimeter.posture.controls import Issue, arn_resource

#: AWS's default fields followed by the ones that trace traffic through NAT and load balancers.
FLOW_LOG_FORMAT = " ".join(
    "${" + f + "}"
    for f in (
        "version",
        "account-id",
        "interface-id",
        "srcaddr",
        "dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "action",
        "log-status",
        "vpc-id",
        "subnet-id",
        "instance-id",
        "flow-direction",
        "pkt-srcaddr",
        "pkt-dstaddr",
        "traffic-path",
    )
)


@dataclass(frozen=True, slots=True)
class FlowLog:
    flow_log_id: str
    resource_id: str
    traffic_type: str
    status: str
    deliver_status: str | None
    destination_type: str | None
    destination: str | None

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE" and (self.deliver_status or "SUCCESS") != "FAILED"

    @property
    def sufficient(self) -> bool:
        return self.active and self.traffic_type == "ALL"

    def describe(self) -> str:
        where = self.destination or self.destination_type or "?"
        state = "active" if self.active else f"inactive ({self.status}/{self.deliver_status or '-'})"
        return f"{self.flow_log_id} ({self.traffic_type} traffic to {where}, {state})"


def flow_log_from_api(raw: Mapping[str, Any]) -> FlowLog:
    return FlowLog(
        flow_log_id=str(raw.get("FlowLogId", "")),
        resource_id=str(raw.get("ResourceId", "")),
        traffic_type=str(raw.get("TrafficType", "")),
        status=str(raw.get("FlowLogStatus", "")),
        deliver_status=raw.get("DeliverLogsStatus"),
        destination_type=raw.get("LogDestinationType"),
        destination=raw.get("LogDestination") or raw.get("LogGroupName"),
    )


def vpc_issue(
    vpc_id: str,
    flow_logs: Sequence[FlowLog],
    *,
    account: str,
    region: str,
    chain: tuple[str, ...] = (),
    why: str = "",
    deleted: Sequence[str] = (),
) -> Issue | None:
    """The PER-FL-1 issue of one VPC, or None when an active ALL-traffic flow log exists."""
    if any(f.sufficient for f in flow_logs):
        return None
    reasons = []
    weak = [f for f in flow_logs if not f.sufficient]
    if weak:
        score = 45
        summary = (
            f"VPC {vpc_id} has no active flow log of ALL traffic: "
            + "; ".join(f.describe() for f in weak)
            + "."
        )
        reasons.append("a flow log exists but records too little or nothing (+45)")
    else:
        score = 55
        summary = f"VPC {vpc_id} has no flow log."
        reasons.append("no flow log at all (+55)")
    if deleted:
        score += 10
        summary += f" Flow log {', '.join(deleted)} was deleted."
        reasons.append("a flow log was just deleted, a defense-evasion step (+10)")
    if why:
        summary += f" {why}"
    return Issue(
        control_id="PER-FL-1",
        resource=arn_resource(
            "AwsEc2Vpc", ec2_arn(region, account, "vpc", vpc_id), vpc_id, {"VpcId": vpc_id}
        ),
        score=min(score, 100),
        reasons=tuple(reasons),
        summary=summary,
        chain=(*chain, f"VPC {vpc_id}") if chain else (f"VPC {vpc_id}",),
        fix=(
            f"aws ec2 create-flow-logs --resource-type VPC --resource-ids {vpc_id} --traffic-type ALL "
            "--log-format '<format with flow-direction pkt-srcaddr pkt-dstaddr traffic-path>' to a log "
            "group with explicit retention."
        ),
        evidence={"perimeter/existing_flow_logs": ", ".join(f.flow_log_id for f in flow_logs)},
        vpc_id=vpc_id,
    )


@dataclass(frozen=True, slots=True)
class FlowLogTarget:
    """Where created flow logs go: from the stack (log group, delivery role) and the policy."""

    log_group: str | None
    role_arn: str | None

    def missing(self, policy: FlowLogPolicy) -> str | None:
        if policy.destination == "s3":
            return None
        if not self.log_group or not self.role_arn:
            return "PERIMETER_FLOW_LOG_GROUP and PERIMETER_FLOW_LOG_ROLE_ARN must be set for cloud-watch-logs"
        return None


def create_request(vpc_id: str, policy: FlowLogPolicy, target: FlowLogTarget) -> dict[str, Any]:
    """The CreateFlowLogs parameters for one VPC."""
    params: dict[str, Any] = {
        "ResourceIds": [vpc_id],
        "ResourceType": "VPC",
        "TrafficType": "ALL",
        "LogFormat": FLOW_LOG_FORMAT,
        "MaxAggregationInterval": policy.max_aggregation_interval,
    }
    if policy.destination == "s3":
        params["LogDestinationType"] = "s3"
        params["LogDestination"] = policy.s3_bucket_arn
    else:
        params["LogDestinationType"] = "cloud-watch-logs"
        params["LogGroupName"] = target.log_group
        params["DeliverLogsPermissionArn"] = target.role_arn
    return params
