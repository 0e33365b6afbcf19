"""An embedded account worth reviewing, for ``perimeter sweep --embedded``.

The demo's DeepSeek-R1 deployment, plus what only a review finds: a world-open rule made while
nothing listened (no event reached Perimeter), a group nothing has used since an earlier sweep
first saw it 45 days ago (the review-state record that sweep would have left), and a rule that
still names a group someone deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from perimeter_local.template import Resolver

WORLD_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def unused_since(days: int) -> str:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def remember_unused(session: Any, resolver: Resolver, group_id: str, days: int) -> None:
    """The record an earlier sweep leaves when it first sees a group unused."""
    table = resolver.physical["ReviewStateTable"]["Ref"]
    session.client("dynamodb").put_item(
        TableName=table, Item={"pk": {"S": f"unused#{group_id}"}, "since": {"S": unused_since(days)}}
    )


def seed_review(session: Any, account: str, resolver: Resolver) -> dict[str, str]:
    from perimeter_local.demo import seed

    d = seed(session, account)
    ec2 = session.client("ec2")
    ec2.authorize_security_group_ingress(GroupId=d["app_sg_id"], IpPermissions=[WORLD_SSH])
    bastion = ec2.create_security_group(
        GroupName="legacy-bastion", Description="bastion retired in 2025", VpcId=d["vpc_id"]
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=bastion,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]}
        ],
    )
    remember_unused(session, resolver, bastion, 45)
    etl = ec2.create_security_group(GroupName="legacy-etl", Description="etl", VpcId=d["vpc_id"])["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=d["db_sg_id"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": etl}]}
        ],
    )
    # AWS refuses to delete a group another group's rule names in the same VPC; moto does not,
    # and across a peering AWS leaves the rule stale the same way.
    ec2.delete_security_group(GroupId=etl)
    return {
        "world_ssh_on": d["app_sg_id"],
        "unused_group": bastion,
        "stale_reference_on": d["db_sg_id"],
        "deleted_group": etl,
        "vpc": d["vpc_id"],
    }
