"""Scenes: a user's change made against the moto account, and the CloudTrail event it emits,
one per acting path of Perimeter; and ``snapshot``, the account's state with moto's random ids
replaced by stable names, so two accounts that lived the same story compare equal.

Every resource a scene creates carries a stable name (a group name, a VPC CIDR, an ENI
description, a model name): that name is what the snapshot shows.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perimeter_local import cloudtrail

from tests.safety.world import ACCOUNT, REGION, World, deployed

W4 = "0.0.0.0/0"


def tcp(port: int, cidr: str = W4) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}


def vpc(world: World, cidr: str, *, routed: bool = True) -> str:
    ec2 = world.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    if routed:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"][0]
        ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock=W4, GatewayId=igw)
    return str(vpc_id)


def group(world: World, vpc_id: str, name: str, tier: str | None = "model") -> str:
    spec: dict[str, Any] = {"GroupName": name, "Description": name, "VpcId": vpc_id}
    if tier:
        spec["TagSpecifications"] = [
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": tier}]}
        ]
    return str(world.client("ec2").create_security_group(**spec)["GroupId"])


def authorize(
    world: World, group_id: str, perms: list[dict[str, Any]], *, event_id: str | None = None, **kw: Any
) -> dict[str, Any]:
    """The user's call against moto (one permission per call: moto's response lists only the
    last permission's rules), then the one event CloudTrail writes for adding them all."""
    created = []
    for p in perms:
        created += world.client("ec2").authorize_security_group_ingress(GroupId=group_id, IpPermissions=[p])[
            "SecurityGroupRules"
        ]
    return cloudtrail.authorize_event(
        account=ACCOUNT,
        region=REGION,
        group_id=group_id,
        permissions=perms,
        created_rules=created,
        event_id=event_id,
        **kw,
    )


def default_group(world: World, vpc_id: str) -> str:
    groups = world.client("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return str(groups[0]["GroupId"])


# --- the scenes -------------------------------------------------------------------------


@dataclass
class Scene:
    name: str
    function_id: str
    setup: Callable[[World], dict[str, Any]]


def sg_world_ssh(world: World) -> dict[str, Any]:
    """SSH and MySQL to the world on the model tier, with a harmless rule in the same call."""
    v = vpc(world, "10.1.0.0/16")
    gid = group(world, v, "model-a")
    return authorize(world, gid, [tcp(22), tcp(3306), tcp(443, "10.1.0.0/16")])


def dsg_migration(world: World) -> dict[str, Any]:
    """Two ENIs on a default group with a world-open rule: the move, then the emptying."""
    ec2 = world.client("ec2")
    v = vpc(world, "10.2.0.0/16")
    subnet = ec2.create_subnet(VpcId=v, CidrBlock="10.2.1.0/24")["Subnet"]["SubnetId"]
    dsg = default_group(world, v)
    # moto gap (FACTS.md): AWS creates the self-reference with every default group.
    ec2.authorize_security_group_ingress(
        GroupId=dsg, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": dsg}]}]
    )
    ec2.authorize_security_group_ingress(GroupId=dsg, IpPermissions=[tcp(22)])
    enis = [
        ec2.create_network_interface(SubnetId=subnet, Description=f"eni-{i}")["NetworkInterface"][
            "NetworkInterfaceId"
        ]
        for i in range(3)
    ]
    return world.event(
        "ModifyNetworkInterfaceAttribute",
        "ec2.amazonaws.com",
        {"networkInterfaceId": enis[0], "groupSet": {"items": [{"groupId": dsg}]}},
        {"_return": True},
    )


def dsg_authorize(world: World) -> dict[str, Any]:
    """A world-open rule added to a default group that two ENIs use: the event names the group,
    not an ENI (a retry finds the group clean and no ENI of the event to start from)."""
    ec2 = world.client("ec2")
    v = vpc(world, "10.5.0.0/16")
    subnet = ec2.create_subnet(VpcId=v, CidrBlock="10.5.1.0/24")["Subnet"]["SubnetId"]
    dsg = default_group(world, v)
    # moto gap (FACTS.md): AWS creates the self-reference with every default group.
    ec2.authorize_security_group_ingress(
        GroupId=dsg, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": dsg}]}]
    )
    for i in range(2):
        ec2.create_network_interface(SubnetId=subnet, Description=f"eni-a{i}")
    return authorize(world, dsg, [tcp(3389)])


def flow_log_create_vpc(world: World) -> dict[str, Any]:
    v = vpc(world, "10.3.0.0/16", routed=False)
    group(world, v, "model-fl")  # the model tier lives here: in the flow-log policy's default scope
    return world.event(
        "CreateVpc",
        "ec2.amazonaws.com",
        {"cidrBlock": "10.3.0.0/16"},
        {"vpc": {"vpcId": v, "state": "pending"}},
    )


IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def model_in_bare_vpc(world: World) -> dict[str, Any]:
    """A model on the database tier's group, in a VPC with no flow log: findings, a flow log."""
    ec2 = world.client("ec2")
    v = vpc(world, "10.4.0.0/16")
    subnet = ec2.create_subnet(VpcId=v, CidrBlock="10.4.1.0/24")["Subnet"]["SubnetId"]
    db = group(world, v, "db", "database")
    role = world.client("iam").create_role(
        RoleName="model-exec", AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST)
    )["Role"]["Arn"]
    arn = world.client("sagemaker").create_model(
        ModelName="deepseek",
        PrimaryContainer={"Image": IMAGE},
        ExecutionRoleArn=role,
        VpcConfig={"Subnets": [subnet], "SecurityGroupIds": [db]},
    )["ModelArn"]
    return world.event(
        "CreateModel",
        "sagemaker.amazonaws.com",
        {
            "modelName": "deepseek",
            "primaryContainer": {"image": IMAGE},
            "executionRoleArn": role,
            "vpcConfig": {"subnets": [subnet], "securityGroupIds": [db]},
        },
        {"modelArn": arn},
    )


INVOKE_STAR = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "InvokeAnything", "Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "*"}
    ],
}


def iam_invoke_on_star(world: World) -> dict[str, Any]:
    iam = world.client("iam")
    trust = {**SAGEMAKER_TRUST, "Statement": [{**SAGEMAKER_TRUST["Statement"][0]}]}
    trust["Statement"][0]["Principal"] = {"Service": "lambda.amazonaws.com"}
    iam.create_role(RoleName="app-backend", AssumeRolePolicyDocument=json.dumps(trust))
    doc = json.dumps(INVOKE_STAR)
    iam.put_role_policy(RoleName="app-backend", PolicyName="invoke-models", PolicyDocument=doc)
    return world.event(
        "PutRolePolicy",
        "iam.amazonaws.com",
        {"roleName": "app-backend", "policyName": "invoke-models", "policyDocument": doc},
        None,
    )


SCENES = {
    s.name: s
    for s in (
        Scene("sg-world-ssh", "SgGuardFunction", sg_world_ssh),
        Scene("default-sg-migration", "DefaultSgGuardFunction", dsg_migration),
        Scene("default-sg-authorize", "DefaultSgGuardFunction", dsg_authorize),
        Scene("flow-log-create-vpc", "FlowLogGuardFunction", flow_log_create_vpc),
        Scene("model-in-bare-vpc", "ModelPostureFunction", model_in_bare_vpc),
        Scene("iam-invoke-on-star", "IamGuardFunction", iam_invoke_on_star),
    )
}


# --- the account's state, named ----------------------------------------------------------

_ID = re.compile(r"\b(?:sg|vpc|eni|subnet|sgr|fl|igw|rtb|i)-[0-9a-f]{8,17}\b")
#: Fields that differ between two runs of the same story (clocks, request and event ids).
_VOLATILE = {
    "time",
    "event_id",
    "event_time",
    "audit_id",
    "started_at",
    "updated_at",
    "created_at",
    "completed_at",
    "request_id",
    "expires",
    "updated",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def names(world: World) -> dict[str, str]:
    """moto id -> stable name, for every resource the scenes name."""
    ec2 = world.client("ec2")
    vpcs = {v["VpcId"]: f"vpc[{v['CidrBlock']}]" for v in ec2.describe_vpcs()["Vpcs"]}
    out = dict(vpcs)
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        out[g["GroupId"]] = f"sg[{vpcs.get(g.get('VpcId', ''), '?')}/{g['GroupName']}]"
    for n in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        out[n["NetworkInterfaceId"]] = f"eni[{n.get('Description', '')}]"
    for s in ec2.describe_subnets()["Subnets"]:
        out[s["SubnetId"]] = f"subnet[{s['CidrBlock']}]"
    for fl in ec2.describe_flow_logs()["FlowLogs"]:
        out[fl["FlowLogId"]] = f"fl[{vpcs.get(fl['ResourceId'], '?')}]"
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [g["GroupId"]]}])[
            "SecurityGroupRules"
        ]:
            out[r["SecurityGroupRuleId"]] = f"rule[{out[g['GroupId']]}:{_rule_text(r, out)}]"
    return out


def _rule_text(r: dict[str, Any], named: dict[str, str]) -> str:
    peer = r.get("CidrIpv4") or r.get("CidrIpv6") or r.get("PrefixListId") or ""
    ref = (r.get("ReferencedGroupInfo") or {}).get("GroupId")
    if ref:
        peer = named.get(ref, ref) if not ref.startswith("sg-") or ref in named else "sg?"
    ports = "" if r["IpProtocol"] == "-1" else f"{r.get('FromPort')}-{r.get('ToPort')}"
    return f"{'out' if r['IsEgress'] else 'in'} {r['IpProtocol']} {ports} {peer}"


def _rename(text: str, named: dict[str, str]) -> str:
    text = _UUID.sub("<event-id>", text)
    return _ID.sub(lambda m: named.get(m.group(0), m.group(0).split("-")[0] + "-?"), text)


def _scrub(node: Any, named: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {_rename(k, named): _scrub(v, named) for k, v in sorted(node.items()) if k not in _VOLATILE}
    if isinstance(node, list):
        return sorted((_scrub(v, named) for v in node), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(node, str):
        return _rename(node, named)
    return node


def snapshot(world: World, *, rule_names: dict[str, str] | None = None) -> dict[str, Any]:
    """What a person would check after the event: rules left on every group, each ENI's groups,
    flow logs, findings (one per id, with compliance and record state), audit records
    (their content, clocks and event ids aside) and how many notifications went out.
    ``rule_names`` names rule ids that no longer exist (taken before they were revoked)."""
    ec2 = world.client("ec2")
    named = names(world)
    if rule_names:
        named = {**rule_names, **named}
    rules: dict[str, list[str]] = {}
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        rs = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [g["GroupId"]]}])
        rules[named[g["GroupId"]]] = sorted(_rule_text(r, named) for r in rs["SecurityGroupRules"])
    enis = {
        named[n["NetworkInterfaceId"]]: sorted(named.get(x["GroupId"], "?") for x in n["Groups"])
        for n in ec2.describe_network_interfaces()["NetworkInterfaces"]
    }
    flow_logs = sorted(
        f"{named.get(f['ResourceId'], '?')} {f['TrafficType']} {f.get('LogDestinationType')}"
        for f in ec2.describe_flow_logs()["FlowLogs"]
    )
    findings = world.findings()
    ids = Counter(f["Id"] for f in findings)
    return {
        "rules": rules,
        "enis": enis,
        "flow_logs": flow_logs,
        "findings": sorted(
            (
                _rename(f["Id"], named),
                f["Compliance"]["Status"],
                f["RecordState"],
                f.get("Workflow", {}).get("Status", ""),
            )
            for f in findings
        ),
        "duplicate_finding_ids": sorted(i for i, n in ids.items() if n > 1),
        "audit": sorted(
            (json.dumps(_scrub(r, named), sort_keys=True) for r in world.audit()),
        ),
        "notifications": world.notifications(),
    }


def rule_names(world: World) -> dict[str, str]:
    """Names of every rule that exists now (call before the handler revokes them)."""
    return {k: v for k, v in names(world).items() if k.startswith("sgr-")}


_REFERENCE: dict[str, tuple[dict[str, Any], list[str]]] = {}


def reference(scene: Scene) -> tuple[dict[str, Any], list[str]]:
    """The fault-free end state of a scene and the calls it took, in an account of its own
    (computed once per session). Call it while no other account is open."""
    if scene.name not in _REFERENCE:
        with deployed() as w:
            event = scene.setup(w)
            names_before = rule_names(w)
            out = w.deliver(scene.function_id, event)
            assert out.ok and out.attempts == 1, out.error
            _REFERENCE[scene.name] = (snapshot(w, rule_names=names_before), out.calls)
    return _REFERENCE[scene.name]


def profile(values: list[Any], short: set[Any]) -> list[Any]:
    """Parameters for a test: those in ``short`` run in ``make test``, the rest under
    ``pytest -m long`` (each costs a fresh moto account, seconds on a shared machine)."""
    import pytest

    return [v if v in short else pytest.param(v, marks=pytest.mark.long) for v in values]


def differences(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """What differs, per part of the snapshot (for a readable failure)."""
    out: dict[str, Any] = {}
    for key in want:
        a, b = got.get(key), want[key]
        if a == b:
            continue
        if isinstance(b, dict) and isinstance(a, dict):
            out[key] = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
        elif isinstance(b, list) and isinstance(a, list):
            out[key] = {
                "faulted only": [x for x in a if x not in b],
                "fault-free only": [x for x in b if x not in a],
            }
        else:
            out[key] = (a, b)
    return out
