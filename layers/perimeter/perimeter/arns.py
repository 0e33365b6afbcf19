"""ARNs Perimeter builds itself, in one place so the partition is never hard-coded (pure)."""

from __future__ import annotations


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def ec2_arn(region: str, account: str, resource_type: str, resource_id: str) -> str:
    """``arn:aws:ec2:us-east-1:123456789012:security-group/sg-1`` and the like."""
    return f"arn:{partition_of(region)}:ec2:{region}:{account}:{resource_type}/{resource_id}"
