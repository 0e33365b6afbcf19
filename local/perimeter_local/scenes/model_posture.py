"""Demo scene: DeepSeek-R1 deployed the unsafe way, then the safe way (issue 4).

Unsafe: a model outside any VPC and without network isolation; a second one inside the VPC
but on the database's security group, in a VPC with no flow log and no PrivateLink endpoint
for the runtime; an invoke policy on ``*``. Perimeter reports one finding per problem, each
naming the chain endpoint -> config -> model -> SG and the fix, and creates the missing flow
log (PER-FL-1 is enforced). Safe: a model-tier group of its own, isolation, a runtime
endpoint: nothing to report. Then someone deletes the flow log, and it comes back.

Bedrock (guardrails, Marketplace endpoints, model import) is not in the embedded account
(moto lacks those APIs); those paths are exercised by the Stubber tests instead.
"""

from __future__ import annotations

import json
from typing import Any

from perimeter.core.events import wrap_in_envelope

from perimeter_local.cloudtrail import record

TITLE = "Model deployment posture: VPC, isolation, tiers, flow logs, invoke policies (PER-VPC/TIER/FL/IAM)"
IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
HF = {"HF_MODEL_ID": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"}


def _event(
    demo: Any, name: str, source: str, request: dict[str, Any], response: dict[str, Any] | None
) -> dict[str, Any]:
    return wrap_in_envelope(record(name, source, request, response, account=demo.account, region=demo.region))


def _issues(demo: Any, results: list[dict[str, Any]], function: str) -> list[dict[str, Any]]:
    res = next((r for r in results if r["function"] == function), None)
    if res is None or not res["ok"]:
        return []
    issues = list((res["result"] or {}).get("issues", []))
    for i in issues:
        demo.say(f"    {i['control']:<10} {i['severity']:<8} {i['action']:<9} {i['resource']}")
        demo.say_wrapped(i["summary"], "        ")
        if i.get("chain"):
            demo.say_wrapped(f"chain: {i['chain']}", "        ")
        demo.say_wrapped(f"fix: {i['fix']}", "        ")
        if i.get("remediation"):
            demo.say_wrapped(i["remediation"], "        ")
    return issues


def _status(results: list[dict[str, Any]], function: str) -> str | None:
    res = next((r for r in results if r["function"] == function), None)
    return (res.get("result") or {}).get("status") if res and res["ok"] else None


def _model(demo: Any, name: str, *, vpc: dict[str, list[str]] | None, isolation: bool) -> dict[str, Any]:
    sm = demo.session.client("sagemaker")
    d = demo.deployment
    kwargs: dict[str, Any] = {
        "ModelName": name,
        "ExecutionRoleArn": d["execution_role_arn"],
        "PrimaryContainer": {"Image": IMAGE.format(region=demo.region), "Environment": HF},
        "EnableNetworkIsolation": isolation,
    }
    request: dict[str, Any] = {
        "modelName": name,
        "executionRoleArn": d["execution_role_arn"],
        "primaryContainer": {"image": IMAGE.format(region=demo.region), "environment": HF},
        "enableNetworkIsolation": isolation,
    }
    if vpc:
        kwargs["VpcConfig"] = {"Subnets": vpc["subnets"], "SecurityGroupIds": vpc["groups"]}
        request["vpcConfig"] = {"subnets": vpc["subnets"], "securityGroupIds": vpc["groups"]}
    arn = sm.create_model(**kwargs)["ModelArn"]
    return _event(demo, "CreateModel", "sagemaker.amazonaws.com", request, {"modelArn": arn})


def _endpoint(demo: Any, name: str, model: str) -> dict[str, Any]:
    sm = demo.session.client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.2xlarge",
            }
        ],
    )
    arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")["EndpointArn"]
    return _event(
        demo,
        "CreateEndpoint",
        "sagemaker.amazonaws.com",
        {"endpointName": name, "endpointConfigName": f"{name}-config"},
        {"endpointArn": arn},
    )


def _active_all_flow_logs(demo: Any, vpc: str) -> list[dict[str, Any]]:
    ec2 = demo.session.client("ec2")
    logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    return [f for f in logs if f["TrafficType"] == "ALL" and f.get("FlowLogStatus") == "ACTIVE"]


def play(demo: Any) -> None:
    d = demo.deployment
    ec2, iam = demo.session.client("ec2"), demo.session.client("iam")
    vpc, private = d["vpc_id"], d["private_subnet_id"]
    for fl in ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]:
        ec2.delete_flow_logs(FlowLogIds=[fl["FlowLogId"]])  # start from "no flow log"

    # The database tier talks to nothing outside the VPC (so its SG-4 finding does not crowd
    # this scene; ModelPosture's tests show the SG controls on a shared group).
    ec2.revoke_security_group_egress(
        GroupId=d["db_sg_id"], IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    demo.say("DeepSeek-R1, the unsafe way.")
    out = demo.route(
        _model(demo, "deepseek-r1-public", vpc=None, isolation=False),
        "CreateModel deepseek-r1-public: no VpcConfig, EnableNetworkIsolation=false",
    )
    found = {i["control"] for i in _issues(demo, out, "ModelPostureFunction")}
    demo.check(
        found == {"PER-VPC-1", "PER-VPC-2"}, "outside a VPC and not isolated: PER-VPC-1 + PER-VPC-2, one each"
    )

    _model(demo, "deepseek-r1-shared", vpc={"subnets": [private], "groups": [d["db_sg_id"]]}, isolation=False)
    out = demo.route(
        _endpoint(demo, "deepseek-r1-shared", "deepseek-r1-shared"),
        "CreateEndpoint deepseek-r1-shared: model on the database's SG, "
        "VPC without flow log or runtime endpoint",
    )
    issues = _issues(demo, out, "ModelPostureFunction")
    got = {(i["control"], i["resource"]) for i in issues}
    demo.check(("PER-TIER-1", d["db_sg_id"]) in got, "the database tier's SG serving a model: PER-TIER-1")
    demo.check(("PER-VPC-2", vpc) in got, "no sagemaker.runtime interface endpoint in the VPC: PER-VPC-2")
    demo.check(
        all(i["chain"].startswith("endpoint deepseek-r1-shared -> endpoint config") for i in issues),
        "every finding names the chain endpoint -> config -> model (-> SG)",
    )
    demo.check(len(got) == len(issues), "one finding per problem (no duplicates)")
    flow = _active_all_flow_logs(demo, vpc)
    demo.check(len(flow) == 1, "PER-FL-1 enforced: an ALL-traffic flow log now exists on the model's VPC")
    if flow:
        demo.say_wrapped(
            f"flow log {flow[0]['FlowLogId']} -> {flow[0].get('LogGroupName')}: "
            f"{flow[0].get('LogFormat', '')}",
            "    ",
        )

    iam.create_role(
        RoleName="chat-app-backend",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeAnyModel",
                "Effect": "Allow",
                "Action": ["sagemaker:InvokeEndpoint", "bedrock:InvokeModel*"],
                "Resource": "*",
            }
        ],
    }
    iam.put_role_policy(RoleName="chat-app-backend", PolicyName="invoke", PolicyDocument=json.dumps(doc))
    out = demo.route(
        _event(
            demo,
            "PutRolePolicy",
            "iam.amazonaws.com",
            {"roleName": "chat-app-backend", "policyName": "invoke", "policyDocument": json.dumps(doc)},
            None,
        ),
        "PutRolePolicy chat-app-backend: sagemaker:InvokeEndpoint + bedrock:InvokeModel* on *",
    )
    iam_issues = _issues(demo, out, "IamGuardFunction")
    demo.check(
        [i["control"] for i in iam_issues] == ["PER-IAM-1"] and '"Resource":"*"' in iam_issues[0]["summary"],
        "invoke policy on *: PER-IAM-1 quoting the statement",
    )

    demo.say("\nDeepSeek-R1, the safe way: own model-tier SG, isolation, PrivateLink to the runtime.")
    sg = ec2.create_security_group(
        GroupName="deepseek-r1-private",
        Description="model tier",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )["GroupId"]
    ec2.revoke_security_group_egress(
        GroupId=sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    ec2.authorize_security_group_egress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8080,
                "UserIdGroupPairs": [{"GroupId": d["app_sg_id"]}],
            }
        ],
    )
    ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=f"com.amazonaws.{demo.region}.sagemaker.runtime",
        VpcEndpointType="Interface",
        SubnetIds=[private],
        SecurityGroupIds=[sg],
    )
    out = demo.route(
        _model(demo, "deepseek-r1-private", vpc={"subnets": [private], "groups": [sg]}, isolation=True),
        "CreateModel deepseek-r1-private: private subnet, own model-tier SG, EnableNetworkIsolation=true",
    )
    # Judged on the VPC's whole state, the runtime endpoint just made also resolves the VPC's
    # earlier PER-VPC-2 finding: an update to Security Hub, no new problem, no change in AWS.
    result = (
        next((r["result"] for r in out if r["function"] == "ModelPostureFunction" and r["ok"]), None) or {}
    )
    for fid in result.get("resolved", []):
        demo.say(f"    resolved  {fid}")
    demo.check(
        _status(out, "ModelPostureFunction") in ("compliant", "reported") and not result.get("issues"),
        "the safe deployment: no new finding, no change",
    )

    demo.say("\nSomeone removes the flow log to cover their tracks.")
    fl_id = flow[0]["FlowLogId"] if flow else "fl-unknown"
    if flow:
        ec2.delete_flow_logs(FlowLogIds=[fl_id])
    out = demo.route(
        _event(
            demo,
            "DeleteFlowLogs",
            "ec2.amazonaws.com",
            {"DeleteFlowLogsRequest": {"FlowLogId": {"content": fl_id, "tag": 1}}},
            {
                "DeleteFlowLogsResponse": {
                    "unsuccessful": "",
                    "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
                }
            },
        ),
        f"DeleteFlowLogs {fl_id} (wrapped DeleteFlowLogsRequest form)",
    )
    _issues(demo, out, "FlowLogGuardFunction")
    demo.check(len(_active_all_flow_logs(demo, vpc)) == 1, "FlowLogGuard put an ALL-traffic flow log back")
