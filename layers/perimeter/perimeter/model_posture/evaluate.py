"""Model-deployment posture judged (pure): PER-VPC-1, PER-VPC-2 and PER-TIER-1 on the chain
endpoint -> endpoint config -> model -> subnets and security groups.

The service follows the chain with reads; this module only says what is wrong with what was
read, naming the whole chain in every issue so a reviewer sees which endpoint a bad model or
group actually serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from perimeter.core.arns import ec2_arn
from perimeter.core.report import FindingResource
from perimeter.posture.controls import Issue, arn_resource

#: The runtime API each serving path is invoked through (interface endpoint service suffix).
RUNTIME_SERVICES = {"sagemaker": "sagemaker.runtime", "bedrock": "bedrock-runtime"}


@dataclass(frozen=True, slots=True)
class ModelFacts:
    name: str
    arn: str
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    network_isolation: bool = False
    execution_role: str | None = None

    @property
    def in_vpc(self) -> bool:
        return bool(self.subnets and self.security_groups)


@dataclass(frozen=True, slots=True)
class NotebookFacts:
    name: str
    arn: str
    subnet: str | None
    security_groups: tuple[str, ...]
    direct_internet: bool
    #: NotebookInstanceStatus; "Deleting" counts as gone (the delete is accepted and runs on)
    status: str = ""


@dataclass(frozen=True, slots=True)
class SharedUse:
    """Evidence that a model's security group is shared with another tier."""

    group_id: str
    group_tier: str | None
    #: ENIs using the group together with a group of another tier: (eni id, other group, its tier)
    enis: tuple[tuple[str, str, str], ...] = ()
    #: ENIs of databases and caches (RDS, ElastiCache) that use the group
    data_enis: tuple[tuple[str, str], ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


def model_outside_vpc(model: ModelFacts, chain: tuple[str, ...]) -> Issue | None:
    if model.in_vpc:
        return None
    return Issue(
        control_id="PER-VPC-1",
        resource=model_resource(model.arn, model.name),
        score=75,
        reasons=(
            "model runs outside any VPC: SageMaker-managed network with internet access (+60)",
            "model tier (+15)",
        ),
        summary=(
            f"Model {model.name} has no VpcConfig: its containers run outside your VPC with internet access."
        ),
        chain=chain,
        fix=(
            f"Recreate model {model.name} with VpcConfig={{Subnets=[<private subnets>], "
            "SecurityGroupIds=[<model-tier SG>]} and EnableNetworkIsolation=true, then a new endpoint "
            "config and update-endpoint."
        ),
    )


def model_without_isolation(model: ModelFacts, chain: tuple[str, ...]) -> Issue | None:
    if model.network_isolation:
        return None
    return Issue(
        control_id="PER-VPC-2",
        resource=model_resource(model.arn, model.name),
        score=50,
        reasons=("the model container may make outbound network calls (+35)", "model tier (+15)"),
        summary=f"Model {model.name} has EnableNetworkIsolation=false: its container can call out.",
        chain=chain,
        fix=f"Recreate model {model.name} with EnableNetworkIsolation=true (models are immutable).",
    )


def vpc_without_runtime_endpoint(
    vpc_id: str,
    services: set[str],
    *,
    kind: str,
    account: str,
    region: str,
    chain: tuple[str, ...],
) -> Issue | None:
    suffix = RUNTIME_SERVICES[kind]
    wanted = f"com.amazonaws.{region}.{suffix}"
    if any(s == wanted or s.endswith(f".{suffix}") for s in services):
        return None
    return Issue(
        control_id="PER-VPC-2",
        resource=arn_resource(
            "AwsEc2Vpc", ec2_arn(region, account, "vpc", vpc_id), vpc_id, {"VpcId": vpc_id}
        ),
        score=40,
        reasons=(f"no interface endpoint {wanted}: invocations leave the VPC (+40)",),
        summary=f"VPC {vpc_id} serves a model but has no interface endpoint for {wanted}.",
        chain=(*chain, f"VPC {vpc_id}"),
        fix=(
            f"aws ec2 create-vpc-endpoint --vpc-endpoint-type Interface --vpc-id {vpc_id} "
            f"--service-name {wanted} "
            "--private-dns-enabled --subnet-ids <private subnets> --security-group-ids <endpoint SG>"
        ),
        vpc_id=vpc_id,
    )


def shared_group(
    use: SharedUse, *, account: str, region: str, vpc_id: str | None, chain: tuple[str, ...]
) -> Issue | None:
    """PER-TIER-1: the group serving a model is another tier's, or shared with another tier's ENIs."""
    evidence: list[str] = []
    if use.group_tier and use.group_tier != "model":
        evidence.append(f"{use.group_id} is tagged as the {use.group_tier} tier")
    evidence.extend(f"ENI {eni} also carries {other} ({tier} tier)" for eni, other, tier in use.enis)
    evidence.extend(f"ENI {eni} ({desc}) uses it" for eni, desc in use.data_enis)
    if not evidence:
        return None
    return Issue(
        control_id="PER-TIER-1",
        resource=arn_resource(
            "AwsEc2SecurityGroup",
            ec2_arn(region, account, "security-group", use.group_id),
            use.group_id,
            {"GroupId": use.group_id},
        ),
        score=75,
        reasons=("the model's security group is shared with another tier (+60)", "model tier (+15)"),
        summary=f"Security group {use.group_id} serves a model and another tier: "
        + "; ".join(evidence)
        + ".",
        chain=(*chain, use.group_id),
        fix=(
            "Create a model-tier security group (tag perimeter:tier=model) for the model alone, allow the "
            "app tier in by security-group reference, and recreate the model with it."
        ),
        vpc_id=vpc_id,
        group_id=use.group_id,
        tags=use.tags,
    )


def model_resource(arn: str, name: str) -> FindingResource:
    return arn_resource("Other", arn, f"model/{name}", {"ModelName": name})


def notebook_resource(arn: str, name: str) -> FindingResource:
    return arn_resource("Other", arn, f"notebook/{name}", {"NotebookInstanceName": name})


def marketplace_resource(arn: str, name: str) -> FindingResource:
    return arn_resource("Other", arn, f"marketplace-endpoint/{name}", {"EndpointArn": arn})


def notebook_issues(nb: NotebookFacts, chain: tuple[str, ...]) -> list[Issue]:
    problems = []
    if not nb.subnet:
        problems.append("has no SubnetId (it runs outside your VPC)")
    if nb.direct_internet:
        problems.append("has DirectInternetAccess=Enabled")
    if not problems:
        return []
    return [
        Issue(
            control_id="PER-VPC-1",
            resource=notebook_resource(nb.arn, nb.name),
            score=70 if not nb.subnet else 60,
            reasons=tuple(f"notebook {p} (+{70 if not nb.subnet else 60})" for p in problems[:1]),
            summary=f"Notebook instance {nb.name} " + " and ".join(problems) + ".",
            chain=chain,
            fix=(
                f"Recreate notebook {nb.name} with --subnet-id <private subnet> "
                "--security-group-ids <tier SG> "
                "--direct-internet-access Disabled (reach the internet through a NAT gateway if needed)."
            ),
        )
    ]


def marketplace_outside_vpc(arn: str, name: str, chain: tuple[str, ...]) -> Issue:
    return Issue(
        control_id="PER-VPC-1",
        resource=marketplace_resource(arn, name),
        score=75,
        reasons=("Marketplace endpoint without a VPC configuration (+60)", "model tier (+15)"),
        summary=f"Bedrock Marketplace endpoint {name} has no vpc configuration: it runs outside your VPC.",
        chain=chain,
        fix=(
            f"update-marketplace-model-endpoint --endpoint-arn {arn} with endpointConfig.sageMaker.vpc "
            "{subnetIds: [<private subnets>], securityGroupIds: [<model-tier SG>]}."
        ),
    )


def vpcs_of(subnets: Sequence[str], subnet_vpcs: Mapping[str, str]) -> list[str]:
    return list(dict.fromkeys(subnet_vpcs[s] for s in subnets if s in subnet_vpcs))


def domain_resource(arn: str, domain_id: str, name: str = "") -> FindingResource:
    return arn_resource("Other", arn, f"domain/{domain_id}", {"DomainId": domain_id, "DomainName": name})


def domain_issue(arn: str, domain_id: str, name: str, access: str, chain: tuple[str, ...]) -> Issue | None:
    """A SageMaker Studio domain whose apps (notebooks, JupyterLab, Canvas: where models are
    tried and deployed from) reach the internet through SageMaker's own network, outside the
    VPC and its security groups (``AppNetworkAccessType`` ``PublicInternetOnly``, the default)."""
    if access != "PublicInternetOnly":
        return None
    return Issue(
        control_id="PER-VPC-1",
        resource=domain_resource(arn, domain_id, name),
        score=60,
        reasons=("Studio apps with direct internet access, outside the VPC's controls (+60)",),
        summary=(
            f"SageMaker domain {name or domain_id} ({domain_id}) has AppNetworkAccessType "
            "PublicInternetOnly: its apps reach the internet directly, past the VPC's security groups, "
            "flow logs and endpoints."
        ),
        chain=chain,
        fix=(
            f"aws sagemaker update-domain --domain-id {domain_id} --app-network-access-type VpcOnly "
            "(with interface endpoints for the SageMaker APIs, or a NAT gateway; running apps must be "
            "deleted first)."
        ),
    )
