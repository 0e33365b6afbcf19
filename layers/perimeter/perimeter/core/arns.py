"""ARNs Perimeter builds itself, in one place so the partition is never hard-coded (pure)."""

from __future__ import annotations

#: The partitions Perimeter can run in (AWS-managed policy ARNs differ only by this).
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def ec2_arn(region: str, account: str, resource_type: str, resource_id: str) -> str:
    """``arn:aws:ec2:us-east-1:123456789012:security-group/sg-1`` and the like."""
    return f"arn:{partition_of(region)}:ec2:{region}:{account}:{resource_type}/{resource_id}"


def arn(service: str, region: str, account: str, resource: str) -> str:
    """``arn:<partition of region>:<service>:<region>:<account>:<resource>``."""
    return f"arn:{partition_of(region)}:{service}:{region}:{account}:{resource}"


def iam_arn(region: str, account: str, resource: str) -> str:
    """IAM is global: no region in the ARN, but the partition still follows the region."""
    return f"arn:{partition_of(region)}:iam::{account}:{resource}"


def marketplace_endpoint_arn(region: str, account: str, name: str) -> str:
    """A Bedrock Marketplace endpoint is a SageMaker endpoint: Bedrock's API names it by the
    SageMaker endpoint ARN (``endpointArn`` in CreateMarketplaceModelEndpoint's response)."""
    return arn("sagemaker", region, account, f"endpoint/{name}")
