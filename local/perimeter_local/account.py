"""Make an account look deployed: create what ``template.yaml`` declares, as a deploy would.

The local runner runs handlers in-process, but they still need their tables, topic, queues and
roles. ``prepare`` creates whatever of those is missing in the target account (the embedded
moto server, or any endpoint the credentials point to) under deterministic names, and returns
the resolver that maps each logical id to its physical id, so a replay can be repeated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from perimeter_local.template import Resolver, load_template

#: Resources that run in-process or have no local meaning.
_SKIPPED = {
    "AWS::Serverless::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::Lambda::Permission",
}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _table(session: Any, name: str, props: Mapping[str, Any]) -> dict[str, str]:
    ddb = session.client("dynamodb")
    try:
        desc = ddb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        desc = ddb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    return {"Ref": name, "Arn": desc["TableArn"]}


def _topic(session: Any, name: str) -> dict[str, str]:
    arn = session.client("sns").create_topic(Name=name)["TopicArn"]  # idempotent by name
    return {"Ref": arn, "TopicName": name, "TopicArn": arn}


def _queue(session: Any, name: str) -> dict[str, str]:
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}


def _log_group(session: Any, name: str, region: str, account: str) -> dict[str, str]:
    logs = session.client("logs")
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as exc:
        if _code(exc) != "ResourceAlreadyExistsException":
            raise
    return {"Ref": name, "Arn": f"arn:aws:logs:{region}:{account}:log-group:{name}:*"}


def _role(session: Any, resolver: Resolver, props: Mapping[str, Any], logical_id: str) -> dict[str, str]:
    iam = session.client("iam")
    name = str(resolver.resolve(props.get("RoleName", logical_id)))
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
        doc = json.dumps(resolver.resolve(props["AssumeRolePolicyDocument"]))
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc, Path=props.get("Path", "/"))[
            "Role"
        ]["Arn"]
    return {"Ref": name, "Arn": arn, "RoleId": name}


def _role_policies(session: Any, resolver: Resolver, props: Mapping[str, Any], name: str) -> None:
    iam = session.client("iam")
    for policy in props.get("Policies", []):
        doc = resolver.resolve(policy["PolicyDocument"])
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(doc))


def account_identity(session: Any) -> tuple[str, str]:
    account = session.client("sts").get_caller_identity()["Account"]
    return str(account), str(session.region_name)


def prepare(
    session: Any,
    template_path: Path,
    *,
    stack_name: str = "perimeter",
    parameters: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], Resolver]:
    """Create the template's supporting resources where missing; return (template, resolver)."""
    template = load_template(template_path)
    account, region = account_identity(session)
    pseudo = {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::StackName": stack_name,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    resolver = Resolver(template, dict(parameters or {}), pseudo)
    resources: Mapping[str, Any] = template["Resources"]
    roles: list[tuple[str, Mapping[str, Any]]] = []
    for logical_id, res in resources.items():
        rtype, props = res.get("Type"), res.get("Properties", {}) or {}
        if "Condition" in res and not resolver.condition(res["Condition"]):
            continue
        name = f"{stack_name}-{logical_id}"
        if rtype == "AWS::DynamoDB::Table":
            resolver.physical[logical_id] = _table(session, name, resolver.resolve(props))
        elif rtype == "AWS::SNS::Topic":
            resolver.physical[logical_id] = _topic(session, name)
        elif rtype == "AWS::SQS::Queue":
            resolver.physical[logical_id] = _queue(session, name)
        elif rtype == "AWS::Logs::LogGroup":
            group = str(resolver.resolve(props.get("LogGroupName", f"/perimeter/{name}")))
            resolver.physical[logical_id] = _log_group(session, group, region, account)
        elif rtype == "AWS::SecurityHub::ActionTarget":
            # moto has no CreateActionTarget: the ARN is what Security Hub would give it.
            arn = f"arn:aws:securityhub:{region}:{account}:action/custom/{resolver.resolve(props['Id'])}"
            resolver.physical[logical_id] = {"Ref": arn, "ActionTargetArn": arn}
        elif rtype == "AWS::IAM::Role":
            resolver.physical[logical_id] = _role(session, resolver, props, logical_id)
            roles.append((logical_id, props))
    # Inline policies last: they reference the tables, topics and queues created above.
    for logical_id, props in roles:
        _role_policies(session, resolver, props, resolver.physical[logical_id]["Ref"])
    hub = session.client("securityhub")
    try:
        hub.enable_security_hub(EnableDefaultStandards=False)
    except ClientError as exc:
        if _code(exc) != "ResourceConflictException":
            raise
    return template, resolver
