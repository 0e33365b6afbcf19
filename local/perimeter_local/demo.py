"""``perimeter demo``: Perimeter at work on an embedded AWS account, in under a minute.

It starts moto on 127.0.0.1, creates the stack's supporting resources as a deploy would, seeds a
DeepSeek-R1 deployment (VPC with public and private subnets and an internet gateway, a model-
tier SG on a SageMaker model and endpoint, database and app tiers), then makes risky changes
through the API, turns each into the CloudTrail event AWS would emit, routes it through the
template's EventBridge rules to the handlers, and shows what was scored, revoked and reported.
Further scenes (``perimeter_local/scenes/*.py``: ``TITLE`` and ``play(demo)``) run after it.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from perimeter_local import cloudtrail
from perimeter_local.invoke import invoke, route
from perimeter_local.template import functions

MODEL_NAME = "deepseek-r1-distill-llama-8b"
TGI_IMAGE = "huggingface-pytorch-tgi-inference:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04"
ENDPOINT_NAME = "deepseek-r1-endpoint"
WIDE_CIDR = "52.0.0.0/8"


class Demo:
    """What a scene gets: the embedded account, the seeded deployment, and a way to route
    events through the template's rules to the handlers."""

    def __init__(self, session: Any, template_path: Path, log_path: Path, quiet: bool = False) -> None:
        from perimeter_local.account import prepare

        self.session = session
        self.template, self.resolver = prepare(session, template_path)
        self.specs = functions(self.template, self.resolver, template_path.parent)
        self.account = self.resolver.pseudo["AWS::AccountId"]
        self.region = self.resolver.pseudo["AWS::Region"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = log_path.open("w", encoding="utf-8")
        self.quiet = quiet
        self.checks: list[tuple[bool, str]] = []
        self.routed: list[dict[str, Any]] = []
        self.deployment: dict[str, str] = {}
        self.inbox = ""

    # --- what scenes call -----------------------------------------------------------
    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text)

    def say_wrapped(self, text: str, indent: str, width: int = 110) -> None:
        """Long text (a finding's fix, a command) wrapped at word boundaries, never cut."""
        lines = textwrap.wrap(
            text,
            width=width,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        for line in lines or [indent]:
            self.say(line)

    def audit_count(self) -> int:
        audit = self.resolver.physical["AuditTable"]["Ref"]
        return int(self.session.client("dynamodb").scan(TableName=audit, Select="COUNT")["Count"])

    def check(self, condition: bool, text: str) -> None:
        self.checks.append((bool(condition), text))
        self.say(f"  [{'PASS' if condition else 'FAIL'}] {text}")

    def route(self, event: dict[str, Any], label: str) -> list[dict[str, Any]]:
        detail = event.get("detail", {})
        self.say(f"\n> {label}")
        self.say(f"  CloudTrail: {detail.get('eventName')} by {detail.get('userIdentity', {}).get('arn')}")
        hits = route(self.specs, event)
        if not hits:
            self.say("  no EventBridge rule matches: not delivered")
        # A repeated eventID is a duplicate delivery: show what it did (nothing), not the answer
        # the idempotency table hands back, which repeats the first run's summary.
        duplicate = any(e["event_id"] == detail.get("eventID") for e in self.routed)
        audit_before = self.audit_count() if duplicate else 0
        results = []
        for spec, rule in hits:
            res = invoke(spec, event, account=self.account, region=self.region, log_stream=self.log)
            res["rule"] = rule
            results.append(res)
            if duplicate and res["ok"]:
                res["duplicate"] = True
                self.say(
                    f"  rule {res['rule']} -> {res['function']} ({res['ms']} ms): "
                    "no-op, duplicate delivery (eventID already processed)"
                )
            else:
                self._show(res)
        if duplicate:
            after = self.audit_count()
            self.say(f"  nothing done again: audit records {audit_before} before, {after} after")
        self.routed.append({"label": label, "event_id": detail.get("eventID"), "results": results})
        return results

    # --- output -----------------------------------------------------------------------
    def _show(self, res: dict[str, Any]) -> None:
        head = f"  rule {res['rule']} -> {res['function']} ({res['ms']} ms)"
        if not res["ok"]:
            self.say(f"{head}: FAILED {res['error']}")
            return
        out = res["result"] or {}
        self.say(f"{head}: {out.get('status')}" + (f" ({out['reason']})" if out.get("reason") else ""))
        for group in out.get("groups", []) if isinstance(out.get("groups"), list) else []:
            if not isinstance(group, dict):
                continue
            for v in group.get("violations", []):
                self.say(
                    f"    {v['control']:<9} {v['severity']:<8} score {v['score']:>3}  "
                    f"{v['rule']:<28} -> {v['action']}"
                )
                for reason in v.get("reasons", [])[:5]:
                    self.say(f"        {reason}")
            if group.get("audit_id"):
                self.say(f"    audit record {group['audit_id']} (undo: perimeter restore <id>)")
        for finding in out.get("findings", []) if isinstance(out.get("findings"), list) else []:
            text = finding if isinstance(finding, str) else json.dumps(finding)
            self.say_wrapped(f"finding {text}", "    ")


# --- the seeded deployment ---------------------------------------------------------------
def seed(session: Any, account: str) -> dict[str, str]:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "deepseek-r1"}]}],
    )["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=table, SubnetId=public)

    def group(name: str, tier: str) -> str:
        return str(
            ec2.create_security_group(
                GroupName=name,
                Description=f"{tier} tier",
                VpcId=vpc,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": tier}]}
                ],
            )["GroupId"]
        )

    model_sg, db_sg, app_sg = (
        group("deepseek-r1-endpoint", "model"),
        group("feature-db", "database"),
        group("chat-app", "app"),
    )
    ec2.authorize_security_group_ingress(
        GroupId=model_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": app_sg}]}
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=db_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": app_sg}]}
        ],
    )
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]

    iam = session.client("iam")
    role_arn = iam.create_role(
        RoleName="deepseek-r1-sagemaker-execution",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    sm = session.client("sagemaker")
    sm.create_model(
        ModelName=MODEL_NAME,
        ExecutionRoleArn=role_arn,
        PrimaryContainer={
            "Image": f"763104351884.dkr.ecr.{session.region_name}.amazonaws.com/{TGI_IMAGE}",
            "Environment": {"HF_MODEL_ID": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "SM_NUM_GPUS": "1"},
        },
        VpcConfig={"Subnets": [private], "SecurityGroupIds": [model_sg]},
        EnableNetworkIsolation=True,
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{ENDPOINT_NAME}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": MODEL_NAME,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.2xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=f"{ENDPOINT_NAME}-config")
    return {
        "account": account,
        "vpc_id": vpc,
        "public_subnet_id": public,
        "private_subnet_id": private,
        "internet_gateway_id": igw,
        "model_sg_id": model_sg,
        "db_sg_id": db_sg,
        "app_sg_id": app_sg,
        "default_sg_id": default_sg,
        "execution_role_arn": role_arn,
        "model_name": MODEL_NAME,
        "endpoint_name": ENDPOINT_NAME,
        "endpoint_config_name": f"{ENDPOINT_NAME}-config",
    }


def _rules(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    return list(
        ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
            "SecurityGroupRules"
        ]
    )


def authorize_and_record(
    demo: Demo, group_id: str, permissions: list[dict[str, Any]], **kw: Any
) -> dict[str, Any]:
    """Make the change through the API and return the CloudTrail event AWS would emit for it,
    with the created rules' ids (moto's own response lists only part of them)."""
    ec2 = demo.session.client("ec2")
    before = {r["SecurityGroupRuleId"] for r in _rules(ec2, group_id)}
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    created = [r for r in _rules(ec2, group_id) if r["SecurityGroupRuleId"] not in before]
    return cloudtrail.authorize_event(
        account=demo.account,
        region=demo.region,
        group_id=group_id,
        permissions=permissions,
        created_rules=created,
        **kw,
    )


def world_open(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    """Ingress rules open to the whole internet."""
    return [
        r
        for r in _rules(ec2, group_id)
        if not r["IsEgress"] and (r.get("CidrIpv4") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0")
    ]


def scene_security_groups(demo: Demo) -> None:
    d = demo.deployment
    ec2 = demo.session.client("ec2")
    model_sg, app_sg = d["model_sg_id"], d["app_sg_id"]
    demo.say("\n== Scene 1: risky changes to the model endpoint's security group ==")
    demo.say(f"Model tier: {model_sg} on SageMaker model {d['model_name']} / endpoint {d['endpoint_name']}")
    demo.route(
        cloudtrail.create_group_event(
            account=demo.account,
            region=demo.region,
            group_id=model_sg,
            name="deepseek-r1-endpoint",
            vpc_id=d["vpc_id"],
            tags={"perimeter:tier": "model"},
        ),
        "The model-tier SG was created with AWS's default allow-all egress "
        "(PER-SG-4 is detect-only by default)",
    )

    first = authorize_and_record(
        demo,
        model_sg,
        [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "UserIdGroupPairs": [{"GroupId": app_sg, "Description": "chat app to model (harmless)"}],
            },
        ],
    )
    demo.route(
        first, "SSH opened to the world, with a harmless HTTPS rule from the app tier in the same call"
    )
    demo.route(
        authorize_and_record(demo, model_sg, [{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]),
        "All traffic opened to the IPv6 internet",
    )
    demo.route(
        authorize_and_record(
            demo,
            model_sg,
            [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": WIDE_CIDR}]}],
        ),
        f"The model server port 8080 opened to a wide CIDR ({WIDE_CIDR})",
    )
    demo.route(first, "EventBridge delivers the first event again (at-least-once delivery)")
    own = authorize_and_record(
        demo,
        d["app_sg_id"],
        [{"IpProtocol": "tcp", "FromPort": 9000, "ToPort": 9000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        actor_arn=f"arn:aws:sts::{demo.account}:assumed-role/perimeter-sg-guard-{demo.region}/perimeter-sg-guard",
    )
    demo.route(own, "A change made by Perimeter's own role comes back through CloudTrail")
    failed = cloudtrail.authorize_event(
        account=demo.account,
        region=demo.region,
        group_id=model_sg,
        permissions=[
            {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
        created_rules=None,
        error_code="Client.UnauthorizedOperation",
    )
    demo.route(failed, "A call that AWS refused (errorCode): it changed nothing")

    demo.say("\nModel SG now:")
    rules = [r for r in _rules(ec2, model_sg) if not r["IsEgress"]]
    for r in rules:
        peer = r.get("CidrIpv4") or r.get("CidrIpv6") or (r.get("ReferencedGroupInfo") or {}).get("GroupId")
        demo.say(
            f"  {r['SecurityGroupRuleId']}  {r['IpProtocol']} "
            f"{r.get('FromPort')}-{r.get('ToPort')} from {peer}"
        )
    demo.check(not world_open(ec2, model_sg), "no world-open rule left on the model-tier SG")
    demo.check(not any(r.get("CidrIpv4") == WIDE_CIDR for r in rules), f"8080 from {WIDE_CIDR} revoked")
    demo.check(
        any(
            r.get("FromPort") == 443 and (r.get("ReferencedGroupInfo") or {}).get("GroupId") == app_sg
            for r in rules
        ),
        "the harmless HTTPS rule from the app tier is intact",
    )
    demo.check(
        any(
            r.get("FromPort") == 8080 and (r.get("ReferencedGroupInfo") or {}).get("GroupId") == app_sg
            for r in rules
        ),
        "the pre-existing 8080 rule from the app tier is intact",
    )
    app_rules = _rules(ec2, d["app_sg_id"])
    demo.check(
        any(r.get("FromPort") == 9000 for r in app_rules),
        "Perimeter's own change was ignored (no loop)",
    )
    sg = {
        e["label"]: r["result"]
        for e in demo.routed
        for r in e["results"]
        if r["function"] == "SgGuardFunction" and r["ok"]
    }
    remediated = {res["event_id"] for res in sg.values() if res.get("status") == "remediated"}
    demo.check(len(remediated) == 3, f"three violating events remediated ({len(remediated)})")
    demo.check(
        any(res.get("status") == "reported" for res in sg.values()),
        "the allow-all egress of the model tier reported, not revoked (detect mode)",
    )
    audit = demo.resolver.physical["AuditTable"]["Ref"]
    records = demo.session.client("dynamodb").scan(TableName=audit, Select="COUNT")["Count"]
    demo.check(records == 3, f"the duplicate delivery was a no-op: still 3 audit records ({records})")


def report(demo: Demo) -> dict[str, Any]:
    hub = demo.session.client("securityhub")
    findings = hub.get_findings(MaxResults=100)["Findings"]
    demo.say(f"\n== Security Hub findings ({len(findings)}) ==")
    for f in sorted(findings, key=lambda f: f["Id"]):
        demo.say(
            f"  {f['Severity']['Label']:<8} {f['Compliance']['Status']:<6} {f['RecordState']:<8} {f['Title']}"
        )
    sg_findings = [f for f in findings if f["GeneratorId"].startswith("PER-SG-")]
    expected = {
        (v["control"], g["group_id"])
        for e in demo.routed
        for r in e["results"]
        if r["function"] == "SgGuardFunction" and r["ok"]
        for g in (r["result"] or {}).get("groups", [])
        if isinstance(g, dict)
        for v in g.get("violations", [])
    }
    # The sweep raises SG findings of its own (what no event reported).
    expected |= {
        (fid.split("/")[1], fid.rsplit("/", 1)[-1])
        for e in demo.routed
        for r in e["results"]
        if r["function"] == "SweepFunction" and r["ok"]
        for fid in (r["result"] or {}).get("raised", [])
        if fid.split("/")[1].startswith("PER-SG-")
    }
    demo.check(
        {(f["GeneratorId"], f["Resources"][0]["Id"].rsplit("/", 1)[-1]) for f in sg_findings} == expected,
        f"one finding per (control, group) SgGuard found violated: {len(sg_findings)} PER-SG findings above",
    )
    sqs = demo.session.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=demo.inbox, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        messages.extend(batch)
        for m in batch:
            sqs.delete_message(QueueUrl=demo.inbox, ReceiptHandle=m["ReceiptHandle"])
    demo.say(f"\n== SNS notifications ({len(messages)}) ==")
    for m in messages:
        body = json.loads(m["Body"])
        demo.say(f"  {body.get('Subject')}")
    audit = demo.session.client("dynamodb").scan(TableName=demo.resolver.physical["AuditTable"]["Ref"])[
        "Items"
    ]
    demo.say(f"\n== Audit trail ({len(audit)} records; `perimeter audit list`, `perimeter restore <id>`) ==")
    for item in sorted(audit, key=lambda i: i["time"]["S"]):
        body = json.loads(item["body"]["S"])
        target = body.get("group_id") or body.get("vpc_id") or ""
        demo.say_wrapped(f"{body['audit_id']}: {body['action']} {target} {_audited(body)}".rstrip(), "  ")
    dlq = demo.resolver.physical["DeadLetterQueue"]["Ref"]
    depth = int(
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    demo.check(depth == 0, "dead-letter queue empty")
    return {"findings": len(findings), "notifications": len(messages), "audit_records": len(audit)}


def _scenes() -> list[Any]:
    try:
        package = importlib.import_module("perimeter_local.scenes")
    except ModuleNotFoundError:
        return []
    mods = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"perimeter_local.scenes.{info.name}")
        if hasattr(mod, "play") and hasattr(mod, "TITLE"):
            mods.append(mod)
    return mods


def _audited(body: dict[str, Any]) -> str:
    """What an audit record holds, in words: the rules removed (by id, or by content where the
    revoke went by content and AWS named no id), the flow logs made, the ENIs moved."""
    from perimeter.core.rules import Rule

    rules = [r.get("rule_id") or Rule.from_dict(r).describe() for r in body.get("rules", [])]
    parts = []
    if rules:
        parts.append(f"rules {', '.join(rules)}")
    if body.get("flow_log_ids"):
        parts.append(f"flow log {', '.join(body['flow_log_ids'])}")
    if body.get("enis"):
        parts.append(f"ENIs moved {', '.join(body['enis'])}")
    return "; ".join(parts)


def run_demo(template: Path, as_json: bool = False) -> int:
    import boto3

    from perimeter_local.embedded import embedded_aws

    started = time.perf_counter()
    with embedded_aws() as endpoint:
        session = boto3.session.Session()
        demo = Demo(session, template, Path(".perimeter/demo-logs.jsonl"), quiet=as_json)
        demo.say(f"Embedded AWS (moto) at {endpoint}; account {demo.account}, region {demo.region}")
        demo.say(f"Handler logs: {demo.log.name}")
        demo.deployment = seed(session, demo.account)
        sqs, sns = session.client("sqs"), session.client("sns")
        demo.inbox = sqs.create_queue(QueueName="security-team-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=demo.inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=demo.resolver.physical["FindingsTopic"]["Ref"], Protocol="sqs", Endpoint=inbox_arn
        )
        demo.say(
            f"Seeded: VPC {demo.deployment['vpc_id']} (public + private subnets, internet gateway), "
            f"model SG {demo.deployment['model_sg_id']}, db SG {demo.deployment['db_sg_id']}, "
            f"app SG {demo.deployment['app_sg_id']}, SageMaker {MODEL_NAME}"
        )
        scene_security_groups(demo)
        for scene in _scenes():
            demo.say(f"\n== {scene.TITLE} ==")
            scene.play(demo)
        outcome = report(demo)
    elapsed = time.perf_counter() - started
    failed = [text for ok, text in demo.checks if not ok]
    errors = [r for e in demo.routed for r in e["results"] if not r["ok"]]
    summary = {
        **outcome,
        "checks": len(demo.checks),
        "failed_checks": failed,
        "handler_errors": [f"{r['function']}: {r['error']}" for r in errors],
        "seconds": round(elapsed, 1),
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"\n{len(demo.checks) - len(failed)}/{len(demo.checks)} checks passed in {elapsed:.1f} s")
        for text in failed:
            print(f"FAILED: {text}", file=sys.stderr)
    return 1 if failed or errors else 0
