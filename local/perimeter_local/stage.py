"""Make a sample event true in a local account, so running it shows Perimeter acting.

A sample in ``events/`` speaks about resources of some account (``sg-0123456789abcdef0``, the
instance ``i-0a0000000000000a1``, the model ``deepseek-r1-distill-8b``...). In an empty local
account those do not exist, and the handler would rightly answer "group deleted". ``stage``
first builds the world the sample assumes (a VPC routed to an internet gateway, its default
group with the self-reference rule AWS gives it, the tier groups, instance and ENIs), then makes
the sample's own call through the API, as the caller did, so the resources are in the state
the call left them in. AWS picks ids, so the event is rewritten consistently: every sample id
becomes the id of the resource created for it (names, like a model's, are kept).

Only for local accounts: the caller refuses to stage anywhere but a loopback endpoint.
moto cannot serve some samples (Bedrock guardrails, enforced configurations, Custom Model Import
and deployments, Marketplace model endpoints, resource policies; SageMaker's UpdateDomain; the
prefix-list filter SgGuard uses). The ``--embedded`` server carries the runner's
extensions for those (``moto_ext``, named in the output); against another local server
``stage`` says so in ``unsupported`` instead of pretending.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from perimeter.core.events import parse_event
from perimeter.security_groups.changes import extract_group_changes

#: Event names whose resources moto 5.2.5 has no API for: staged only where the runner's
#: extensions (moto_ext.py) serve them, i.e. with --embedded.
UNSUPPORTED = {
    "CreateGuardrail": "Bedrock guardrails (bedrock:GetGuardrail)",
    "UpdateGuardrail": "Bedrock guardrails (bedrock:GetGuardrail)",
    "DeleteGuardrail": "Bedrock guardrails (bedrock:ListGuardrails)",
    "CreateModelImportJob": "Bedrock Custom Model Import (bedrock:GetModelImportJob)",
    "CreateMarketplaceModelEndpoint": "Bedrock Marketplace model endpoints",
    "UpdateMarketplaceModelEndpoint": "Bedrock Marketplace model endpoints",
    "DeleteMarketplaceModelEndpoint": "Bedrock Marketplace model endpoints",
    "RegisterMarketplaceModelEndpoint": "Bedrock Marketplace model endpoints",
    "UpdateDomain": "SageMaker UpdateDomain",
    "CreateGuardrailVersion": "Bedrock guardrails (bedrock:GetGuardrail)",
    "PutEnforcedGuardrailConfiguration": "Bedrock enforced guardrail configurations",
    "DeleteEnforcedGuardrailConfiguration": "Bedrock enforced guardrail configurations",
    "CreateCustomModelDeployment": "Bedrock Custom Model Import deployments",
    "PutResourcePolicy": "Bedrock resource policies (bedrock:GetResourcePolicy)",
    "DeleteResourcePolicy": "Bedrock resource policies (bedrock:GetResourcePolicy)",
    # SgGuard finds the groups naming a list with this filter, which moto answers with an error.
    "ModifyManagedPrefixList": "the DescribeSecurityGroups filter ip-permission.prefix-list-id",
}

# The ids the samples share (see events/): two VPCs, their groups, one instance, one ENI.
DSG_VPC, DSG_SUBNET, PRIVATE_SUBNET = (
    "vpc-0a1b2c3d4e5f60001",
    "subnet-0a1b2c3d4e5f60002",
    "subnet-0a1b2c3d4e5f60001",
)
DEFAULT_SG, APP_SG, PRIVATE_MODEL_SG = "sg-0def0000000000001", "sg-0a1b0000000000a01", "sg-0a1b2c3d4e5f60001"
INSTANCE, INSTANCE_ENI, ENI = "i-0a0000000000000a1", "eni-0a0000000000000a1", "eni-0a0000000000000b2"
SG_VPC, MODEL_SG, NEW_SG = "vpc-0123456789abcdef0", "sg-0123456789abcdef0", "sg-0fedcba9876543210"

_ID = re.compile(
    r"\b(?:vpce|vpc|subnet|sg|sgr|i|eni|fl|igw|rtb|rtbassoc|acl|aclassoc|eipalloc|eipassoc)-[0-9a-f]{8,17}\b"
)


@dataclass
class Staged:
    event: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    unsupported: str | None = None
    #: groups whose rules are worth showing afterwards (the ones the call touched)
    groups: list[str] = field(default_factory=list)
    #: earlier calls run through the handlers before the sample's (name -> function -> status)
    earlier: list[dict[str, Any]] = field(default_factory=list)


def _tags(kind: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class World:
    """Creates, on first mention, each sample resource; remembers sample id -> real id."""

    def __init__(
        self,
        session: Any,
        staged: Staged,
        event: Mapping[str, Any] | None = None,
        run_first: Callable[..., list[dict[str, Any]]] | None = None,
    ) -> None:
        self.ec2 = session.client("ec2")
        self.session = session
        self.staged = staged
        self.ids = staged.ids
        self.event = dict(event or {})
        self.run_first = run_first

    def earlier(
        self, name: str, params: Mapping[str, Any], response: Any = None, *, dry_run: bool = False
    ) -> None:
        """Run, through the routed handlers, the earlier call ``name`` the sample's call follows
        (a grant it undoes, a notebook it updates; same caller, its own event id). ``dry_run``:
        Perimeter only reported it (as ``samconfig.toml`` first deploys it), so its finding is
        still open when the sample's call comes."""
        if self.run_first is None:
            return
        event = _rewrite(copy.deepcopy(self.event), self.ids)
        d = event["detail"]
        event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.get('id')}/{name}"))
        d.update(
            eventName=name,
            eventID=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{d.get('eventID')}/{name}")),
            requestParameters=dict(params),
            responseElements=response,
        )
        d.pop("errorCode", None)
        results = self.run_first(event, dry_run=True) if dry_run else self.run_first(event)
        self.staged.earlier.append(
            {
                "event_name": name,
                "statuses": {
                    r["function"]: (r["result"]["status"] if r["ok"] else r["error"]) for r in results
                },
            }
        )
        mode = " in dry run" if dry_run else ""
        self._note(f"{name} run through the handlers{mode} first (the earlier call the sample follows)")

    def _note(self, line: str) -> None:
        self.staged.created.append(line)

    def vpc(self, sample_id: str, cidr: str = "10.0.0.0/16", *, public: bool = True) -> str:
        if sample_id in self.ids:
            return self.ids[sample_id]
        vpc = self.ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        self.ids[sample_id] = vpc
        if public:
            igw = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
            main = self.ec2.describe_route_tables(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc]},
                    {"Name": "association.main", "Values": ["true"]},
                ]
            )["RouteTables"][0]["RouteTableId"]
            self.ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        default = self.ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"][0]["GroupId"]
        # moto gap (FACTS.md): AWS gives every default group "all traffic from itself".
        self.ec2.authorize_security_group_ingress(
            GroupId=default, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": default}]}]
        )
        if sample_id == DSG_VPC:
            self.ids[DEFAULT_SG] = default
        self._note(f"VPC {vpc} ({cidr}{', routed to an internet gateway' if public else ''}) for {sample_id}")
        return vpc

    def subnet(self, sample_id: str) -> str:
        if sample_id in self.ids:
            return self.ids[sample_id]
        vpc = self.vpc(DSG_VPC)
        private = sample_id == PRIVATE_SUBNET
        cidr = "10.0.2.0/24" if private else "10.0.1.0/24"
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
        if private:
            # Its own route table, without the internet gateway: a private subnet.
            table = self.ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            self.ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        self.ids[sample_id] = subnet
        self._note(f"{'private ' if private else ''}subnet {subnet} for {sample_id}")
        return subnet

    def group(self, sample_id: str) -> str:
        if sample_id in self.ids:
            return self.ids[sample_id]
        if sample_id == DEFAULT_SG:
            self.vpc(DSG_VPC)
            return self.ids[DEFAULT_SG]
        if sample_id in (MODEL_SG, NEW_SG):
            vpc, name, tier = self.vpc(SG_VPC), f"model-{sample_id[-4:]}", "model"
        elif sample_id == APP_SG:
            vpc, name, tier = self.vpc(DSG_VPC), "app", "app"
        else:  # e.g. the private model deployment's group
            vpc, name, tier = self.vpc(DSG_VPC), f"model-{sample_id[-4:]}", "model"
        gid = self.ec2.create_security_group(
            GroupName=name,
            Description=f"{tier} tier",
            VpcId=vpc,
            TagSpecifications=_tags("security-group", {"perimeter:tier": tier}),
        )["GroupId"]
        if tier == "model":
            # A model tier's group: HTTPS inside the VPC only, not AWS's allow-all egress (which
            # PER-SG-4 reports), so the group holds no problem but the one the sample's call makes.
            default_egress = [
                r["SecurityGroupRuleId"]
                for r in self.ec2.describe_security_group_rules(
                    Filters=[{"Name": "group-id", "Values": [gid]}]
                )["SecurityGroupRules"]
                if r["IsEgress"]
            ]
            self.ec2.revoke_security_group_egress(GroupId=gid, SecurityGroupRuleIds=default_egress)
            self.ec2.authorize_security_group_egress(
                GroupId=gid,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 443,
                        "ToPort": 443,
                        "IpRanges": [{"CidrIp": "10.0.0.0/16"}],
                    }
                ],
            )
        self.ids[sample_id] = gid
        self._note(f"security group {gid} (perimeter:tier={tier}) for {sample_id}")
        return gid

    def instance(self) -> str:
        if INSTANCE in self.ids:
            return self.ids[INSTANCE]
        subnet = self.subnet(DSG_SUBNET)
        inst = self.ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=1,
            MaxCount=1,
            InstanceType="g5.xlarge",
            SubnetId=subnet,
            SecurityGroupIds=[self.group(DEFAULT_SG)],
        )["Instances"][0]
        self.ids[INSTANCE] = inst["InstanceId"]
        self.ids[INSTANCE_ENI] = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
        self._note(f"instance {inst['InstanceId']} on the default group for {INSTANCE}")
        return str(inst["InstanceId"])

    def eni(self, description: str = "standalone", groups: list[str] | None = None) -> str:
        if ENI in self.ids:
            return self.ids[ENI]
        kwargs: dict[str, Any] = {"SubnetId": self.subnet(DSG_SUBNET), "Description": description}
        if groups:
            kwargs["Groups"] = groups
        eni = self.ec2.create_network_interface(**kwargs)["NetworkInterface"]["NetworkInterfaceId"]
        self.ids[ENI] = eni
        self._note(f"ENI {eni} for {ENI}")
        return str(eni)

    def resolve(self, sample_id: str) -> str:
        """The real id for any sample id the event names (creating it if needed)."""
        if sample_id in self.ids:
            return self.ids[sample_id]
        if sample_id.startswith("vpc-"):
            return self.vpc(sample_id)
        if sample_id.startswith("subnet-"):
            return self.subnet(sample_id)
        if sample_id.startswith("sg-"):
            return self.group(sample_id)
        if sample_id == INSTANCE:
            return self.instance()
        if sample_id == INSTANCE_ENI:
            self.instance()
            return self.ids[INSTANCE_ENI]
        if sample_id == ENI:
            return self.eni()
        return sample_id


def _rewrite(value: Any, ids: Mapping[str, str]) -> Any:
    text = json.dumps(value)
    for old, new in sorted(ids.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    return json.loads(text)


def _authorize(world: World, d: dict[str, Any]) -> None:
    egress = d["eventName"] == "AuthorizeSecurityGroupEgress"
    gid = world.resolve(str(d["requestParameters"]["groupId"]))
    call = parse_event(_rewrite(d, world.ids))
    ec2 = world.ec2
    if egress:
        # A new group already allows all egress; the sample adds that rule itself, so it was gone.
        for rule in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])[
            "SecurityGroupRules"
        ]:
            if rule["IsEgress"]:
                ec2.revoke_security_group_egress(
                    GroupId=gid, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]]
                )
    authorize = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
    for change in extract_group_changes(call):
        for rule in change.rules:
            created = authorize(GroupId=gid, IpPermissions=[rule.to_permission()]).get(
                "SecurityGroupRules", []
            )
            if rule.rule_id and created:
                world.ids[rule.rule_id] = created[0]["SecurityGroupRuleId"]
            world._note(f"rule {rule.describe()} on {gid} (the call)")
    world.staged.groups.append(gid)


def _content(value: Any) -> Any:
    return value.get("content") if isinstance(value, Mapping) else value


def _modify_rules(world: World, d: dict[str, Any]) -> None:
    req = d["requestParameters"]["ModifySecurityGroupRulesRequest"]
    gid = world.resolve(str(_content(req["GroupId"])))
    entry = req["SecurityGroupRule"]
    sample_rule = str(_content(entry["SecurityGroupRuleId"]))
    new = {k: _content(v) for k, v in entry["SecurityGroupRule"].items() if k != "tag"}
    # Before the call: the same port, open only inside the VPC.
    created = world.ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {
                "IpProtocol": new["IpProtocol"],
                "FromPort": new["FromPort"],
                "ToPort": new["ToPort"],
                "IpRanges": [{"CidrIp": "10.0.0.0/16"}],
            }
        ],
    )["SecurityGroupRules"]
    rule_id = created[0]["SecurityGroupRuleId"]
    world.ids[sample_rule] = rule_id
    world.ec2.modify_security_group_rules(
        GroupId=gid, SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": new}]
    )
    world._note(f"rule {rule_id} on {gid}: tcp/{new['FromPort']} from 10.0.0.0/16, then widened (the call)")
    world.staged.groups.append(gid)


def _create_group(world: World, d: dict[str, Any]) -> None:
    req, resp = d["requestParameters"], d["responseElements"] or {}
    vpc = world.vpc(str(req["vpcId"]))
    tags = {
        t["key"]: t["value"]
        for spec in (req.get("tagSpecificationSet") or {}).get("items", [])
        for t in spec.get("tags", [])
    }
    spec: dict[str, Any] = {
        "GroupName": req["groupName"],
        "Description": req["groupDescription"],
        "VpcId": vpc,
    }
    if tags:
        spec["TagSpecifications"] = _tags("security-group", tags)
    gid = world.ec2.create_security_group(**spec)["GroupId"]
    world.ids[str(resp["groupId"])] = gid
    world._note(f"security group {gid} {req['groupName']!r} (the call)")
    world.staged.groups.append(gid)


def _run_instances(world: World, d: dict[str, Any]) -> None:
    # The instance the call launched: on the default group (named, or by omission).
    world.instance()
    world.staged.groups.append(world.ids[DEFAULT_SG])


def _create_eni(world: World, d: dict[str, Any]) -> None:
    req = d["requestParameters"]
    world.eni(str(req.get("description") or "standalone"))
    if d["userIdentity"].get("arn", "").find("AWSServiceRole") >= 0 or "SageMaker" in str(
        req.get("description")
    ):
        _mark_requester_managed(world)
    world.instance()  # the default group's other dependant, as in the sample's account


def _mark_requester_managed(
    world: World, requester: str = "AROAEXAMPLESAGEMAKER", service: str = "SageMaker"
) -> None:
    """moto has no API to create a service-managed ENI: in the embedded (in-process) server we set
    the flag on moto's own record, so describe shows what AWS shows for a service's ENI."""
    from moto.ec2.models import ec2_backends

    account = world.session.client("sts").get_caller_identity()["Account"]
    eni = ec2_backends[account][world.session.region_name].enis.get(world.ids[ENI])
    if eni is None:  # a server in another process (`local up`): its records are out of reach
        world.staged.unsupported = (
            "a service-created (requester-managed) ENI outside --embedded (moto has no API for one)"
        )
        return
    eni.requester_managed = True
    eni.requester_id = requester
    world._note(f"ENI {world.ids[ENI]} marked requester-managed ({service}), as the service creates it")


def _create_vpc_endpoint(world: World, d: dict[str, Any]) -> None:
    """An interface endpoint naming no group: its ENI lands on the VPC's default group."""
    req = d["requestParameters"]["CreateVpcEndpointRequest"]
    resp = d["responseElements"]["CreateVpcEndpointResponse"]["vpcEndpoint"]
    vpc = world.resolve(str(_content(req["VpcId"])))
    subnet = world.resolve(str(_content(req["SubnetId"])))
    endpoint = world.ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=str(_content(req["ServiceName"])),
        VpcEndpointType=str(_content(req["VpcEndpointType"])),
        SubnetIds=[subnet],
        PrivateDnsEnabled=bool(_content(req.get("PrivateDnsEnabled", True))),
    )["VpcEndpoint"]
    world.ids[str(resp["vpcEndpointId"])] = endpoint["VpcEndpointId"]
    [eni] = endpoint["NetworkInterfaceIds"]
    world.ids[str(resp["networkInterfaceIdSet"]["item"])] = eni
    world._note(f"interface endpoint {endpoint['VpcEndpointId']} with ENI {eni} (the call)")
    if world.ids.get(ENI) == eni:
        _mark_requester_managed(world, "AROAEXAMPLEVPCENDPOINT", "VPC endpoint")
    world.instance()  # the default group's other dependant, as in the sample's account
    world.staged.groups.append(world.ids[DEFAULT_SG])


def _modify_vpc_endpoint(world: World, d: dict[str, Any]) -> None:
    """An interface endpoint on the app tier's group, then the call adds the default group to it.
    (moto leaves an endpoint's ENI on the default group whatever groups the endpoint names: the
    ENI reads back on it, as AWS shows it after the call.)"""
    req = d["requestParameters"]["ModifyVpcEndpointRequest"]
    vpc, subnet = world.resolve(DSG_VPC), world.resolve(DSG_SUBNET)
    endpoint = world.ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName="com.amazonaws.us-east-1.sagemaker.runtime",
        VpcEndpointType="Interface",
        SubnetIds=[subnet],
        SecurityGroupIds=[world.resolve(APP_SG)],
    )["VpcEndpoint"]
    world.ids[str(_content(req["VpcEndpointId"]))] = endpoint["VpcEndpointId"]
    [eni] = endpoint["NetworkInterfaceIds"]
    world.ids[ENI] = eni
    _mark_requester_managed(world, "AROAEXAMPLEVPCENDPOINT", "VPC endpoint")
    world.ec2.modify_vpc_endpoint(
        VpcEndpointId=endpoint["VpcEndpointId"], AddSecurityGroupIds=[world.resolve(DEFAULT_SG)]
    )
    world._note(
        f"interface endpoint {endpoint['VpcEndpointId']} (ENI {eni}) given the default group (the call)"
    )
    world.instance()  # the default group's other dependant, as in the sample's account
    world.staged.groups.append(world.ids[DEFAULT_SG])


def _launch_template(world: World, d: dict[str, Any]) -> None:
    """Launch templates as the call left them: one on the default group (CreateLaunchTemplate),
    one whose $Latest gives the model tier a public IP (CreateLaunchTemplateVersion). The fix
    (ModifyLaunchTemplate) is staged after the bad template, judged first: clean versions, the
    last made the default."""
    name = d["eventName"]
    lt_sample = "lt-0a1b2c3d4e5f60007"
    if name == "CreateLaunchTemplateVersion":
        model = world.resolve(PRIVATE_MODEL_SG)
        lt = world.ec2.create_launch_template(
            LaunchTemplateName="inference-workers",
            LaunchTemplateData={"ImageId": "ami-12345678", "SecurityGroupIds": [model]},
        )["LaunchTemplate"]["LaunchTemplateId"]
        world.ids[lt_sample] = lt
        world.ec2.create_launch_template_version(
            LaunchTemplateId=lt,
            SourceVersion="1",
            LaunchTemplateData={
                "NetworkInterfaces": [
                    {
                        "DeviceIndex": 0,
                        "AssociatePublicIpAddress": True,
                        "SubnetId": world.resolve(DSG_SUBNET),
                        "Groups": [model],
                    }
                ]
            },
        )
        world._note(f"launch template {lt}: v1 on the model tier, v2 with a public IP (the call)")
        return
    lt = world.ec2.create_launch_template(
        LaunchTemplateName="inference-workers",
        LaunchTemplateData={"ImageId": "ami-12345678", "SecurityGroupIds": [world.resolve(DEFAULT_SG)]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    world.ids[lt_sample] = lt
    world._note(f"launch template {lt} on the default group")
    if name == "ModifyLaunchTemplate":
        world.earlier(
            "CreateLaunchTemplate",
            {"CreateLaunchTemplateRequest": {"LaunchTemplateName": "inference-workers"}},
            {"CreateLaunchTemplateResponse": {"launchTemplate": {"launchTemplateId": lt}}},
        )
        clean = {"ImageId": "ami-12345678", "SecurityGroupIds": [world.resolve(APP_SG)]}
        for _ in range(2):
            world.ec2.create_launch_template_version(LaunchTemplateId=lt, LaunchTemplateData=clean)
        world.ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="3")
        world._note(f"launch template {lt}: v2, v3 on the app group, v3 the default (the call)")


def _domain(world: World, d: dict[str, Any]) -> None:
    """A Studio domain as CreateDomain made it (moto implements create and describe)."""
    req = d["requestParameters"]
    arn = world.session.client("sagemaker").create_domain(
        DomainName=req["domainName"],
        AuthMode=req["authMode"],
        DefaultUserSettings={"ExecutionRole": req["defaultUserSettings"]["executionRole"]},
        SubnetIds=[world.resolve(s) for s in req["subnetIds"]],
        VpcId=world.resolve(req["vpcId"]),
        AppNetworkAccessType=req["appNetworkAccessType"],
    )["DomainArn"]
    world.ids[str(d["responseElements"]["domainId"])] = str(arn).rsplit("/", 1)[-1]
    world._note(f"SageMaker domain {arn} ({req['appNetworkAccessType']}) (the call)")


def _modify_eni(world: World, d: dict[str, Any]) -> None:
    req = d["requestParameters"]
    world.instance()
    eni = world.eni()
    groups = [g["groupId"] for g in (req.get("groupSet") or {}).get("items", [])]
    if groups and not d.get("errorCode"):
        world.ec2.modify_network_interface_attribute(
            NetworkInterfaceId=eni, Groups=[world.resolve(g) for g in groups]
        )
        world._note(f"ENI {eni} now in {[world.ids[g] for g in groups]} (the call)")
    elif "sourceDestCheck" in req:
        world.ec2.modify_network_interface_attribute(
            NetworkInterfaceId=eni, SourceDestCheck={"Value": bool(req["sourceDestCheck"]["value"])}
        )


def _modify_instance(world: World, d: dict[str, Any]) -> None:
    inst = world.instance()
    groups = [world.resolve(g["groupId"]) for g in d["requestParameters"]["groupSet"]["items"]]
    world.ec2.modify_instance_attribute(InstanceId=inst, Groups=groups)
    world._note(f"instance {inst} now in {groups} (the call)")


def _sagemaker_model(world: World, req: Mapping[str, Any]) -> None:
    sm = world.session.client("sagemaker")
    kwargs: dict[str, Any] = {
        "ModelName": req["modelName"],
        "ExecutionRoleArn": req["executionRoleArn"],
        "PrimaryContainer": {"Image": req["primaryContainer"]["image"]},
    }
    if req.get("primaryContainer", {}).get("environment"):
        kwargs["PrimaryContainer"]["Environment"] = req["primaryContainer"]["environment"]
    vpc_config = req.get("vpcConfig")
    if vpc_config:
        kwargs["VpcConfig"] = {
            "SecurityGroupIds": [world.resolve(g) for g in vpc_config["securityGroupIds"]],
            "Subnets": [world.resolve(s) for s in vpc_config["subnets"]],
        }
    if req.get("enableNetworkIsolation"):
        kwargs["EnableNetworkIsolation"] = True
    sm.create_model(**kwargs)
    world._note(f"SageMaker model {req['modelName']}")


def _private_deployment(world: World) -> None:
    """What "private" means for a model VPC: an ALL-traffic flow log and the runtime endpoint."""
    vpc = world.vpc(DSG_VPC)
    logs = world.session.client("logs")
    iam = world.session.client("iam")
    logs.create_log_group(logGroupName="/vpc/flow-logs")
    role = iam.create_role(
        RoleName="vpc-flow-logs",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    world.ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="/vpc/flow-logs",
        DeliverLogsPermissionArn=role,
    )
    region = world.session.region_name
    world.ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=f"com.amazonaws.{region}.sagemaker.runtime",
        VpcEndpointType="Interface",
        SubnetIds=[world.resolve(PRIVATE_SUBNET)],
        SecurityGroupIds=[world.resolve(PRIVATE_MODEL_SG)],
    )
    world._note(f"flow log (ALL) and a sagemaker.runtime endpoint in {vpc}")


_ENDPOINT_MODEL = {
    "modelName": "deepseek-r1-distill-8b",
    "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-deepseek-execution",
    "primaryContainer": {
        "image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
    },
}


_NOTEBOOK = {
    "notebookInstanceName": "deepseek-eval",
    "instanceType": "ml.t3.medium",
    "roleArn": "arn:aws:iam::123456789012:role/sagemaker-deepseek-execution",
    "directInternetAccess": "Enabled",
    "rootAccess": "Enabled",
}


def _endpoint_config(world: World, name: str, model: Mapping[str, Any] = _ENDPOINT_MODEL) -> None:
    _sagemaker_model(world, model)
    world.session.client("sagemaker").create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model["modelName"],
                "InitialInstanceCount": 1,
                # moto's list of instance types predates ml.g5 (the sample's); the type is not judged.
                "InstanceType": "ml.g4dn.xlarge",
            }
        ],
    )
    world._note(f"SageMaker endpoint config {name}")


def _model_posture(world: World, d: dict[str, Any]) -> None:
    req, name = d["requestParameters"], d["eventName"]
    sm = world.session.client("sagemaker")
    if name == "CreateModel":
        if "private" in str(req.get("modelName")):
            _private_deployment(world)
        if not d.get("errorCode"):
            _sagemaker_model(world, req)
    elif name == "CreateEndpointConfig":
        variant = req["productionVariants"][0]
        _endpoint_config(
            world, req["endpointConfigName"], {**_ENDPOINT_MODEL, "modelName": variant["modelName"]}
        )
    elif name in ("CreateEndpoint", "UpdateEndpoint"):
        # moto has no update_endpoint: the endpoint is created on the config the update names,
        # which is the state the update leaves.
        _endpoint_config(world, req["endpointConfigName"])
        sm.create_endpoint(EndpointName=req["endpointName"], EndpointConfigName=req["endpointConfigName"])
        world._note(f"SageMaker endpoint {req['endpointName']} on {req['endpointConfigName']}")
    elif name == "UpdateNotebookInstance":
        # The notebook as CreateNotebookInstance--direct-internet made it, judged when made (its
        # finding active). moto has no update_notebook_instance: the notebook is built in the
        # state the update leaves (the new instance type, nothing else changed).
        made = {**_NOTEBOOK, "notebookInstanceName": req["notebookInstanceName"]}
        _model_posture(
            world,
            {
                **d,
                "eventName": "CreateNotebookInstance",
                "requestParameters": {**made, "instanceType": req["instanceType"]},
            },
        )
        world.earlier("CreateNotebookInstance", made)
    elif name == "CreateNotebookInstance":
        kwargs: dict[str, Any] = {
            "NotebookInstanceName": req["notebookInstanceName"],
            "InstanceType": req["instanceType"],
            "RoleArn": req["roleArn"],
            "DirectInternetAccess": req.get("directInternetAccess", "Enabled"),
            "RootAccess": req.get("rootAccess", "Enabled"),
        }
        if req.get("subnetId"):
            kwargs["SubnetId"] = world.resolve(req["subnetId"])
            kwargs["SecurityGroupIds"] = [world.resolve(g) for g in req.get("securityGroupIds", [])]
        sm.create_notebook_instance(**kwargs)
        world._note(f"SageMaker notebook instance {req['notebookInstanceName']}")
    if name == "CreateModel" and "default-sg" not in json.dumps(req) and req.get("vpcConfig") is None:
        return
    if DEFAULT_SG in json.dumps(req):
        world.instance()  # the default group's other dependant


_TRUST = {
    "sagemaker": "sagemaker.amazonaws.com",
    "app": "lambda.amazonaws.com",
}


def _role(world: World, name: str) -> None:
    iam = world.session.client("iam")
    service = _TRUST["sagemaker"] if "sagemaker" in name else _TRUST["app"]
    try:
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
        )
        world._note(f"IAM role {name} (trusted by {service})")
    except ClientError as exc:
        if _code(exc) != "EntityAlreadyExists":
            raise


def _iam(world: World, d: dict[str, Any]) -> None:
    iam = world.session.client("iam")
    req, name = d["requestParameters"], d["eventName"]
    if name == "AttachRolePolicy":
        _role(world, req["roleName"])
        iam.attach_role_policy(RoleName=req["roleName"], PolicyArn=req["policyArn"])
    elif name == "PutRolePolicy":
        _role(world, req["roleName"])
        iam.put_role_policy(
            RoleName=req["roleName"], PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
        )
    elif name == "PutUserPolicy":
        iam.create_user(UserName=req["userName"])
        iam.put_user_policy(
            UserName=req["userName"], PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
        )
        world._note(f"IAM user {req['userName']}")
    elif name == "CreatePolicyVersion":
        policy_name = str(req["policyArn"]).rsplit("/", 1)[-1]
        first = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sagemaker:InvokeEndpoint",
                    "Resource": "arn:aws:sagemaker:*:*:endpoint/team-*",
                }
            ],
        }
        arn = iam.create_policy(PolicyName=policy_name, PolicyDocument=json.dumps(first))["Policy"]["Arn"]
        iam.create_policy_version(
            PolicyArn=arn, PolicyDocument=req["policyDocument"], SetAsDefault=bool(req.get("setAsDefault"))
        )
        world._note(f"IAM policy {policy_name}, v1 scoped, v2 as the call wrote it")
        return
    world._note(f"{name} as the call made it")


_INVOKE_ON_STAR = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeAnything",
                "Effect": "Allow",
                "Action": ["sagemaker:InvokeEndpoint", "bedrock:InvokeModel*", "bedrock:Converse*"],
                "Resource": "*",
            }
        ],
    }
)
_SCOPED = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": "arn:aws:sagemaker:*:*:endpoint/team-*",
            }
        ],
    }
)


def _user(world: World, name: str) -> None:
    try:
        world.session.client("iam").create_user(UserName=name)
        world._note(f"IAM user {name}")
    except ClientError as exc:
        if _code(exc) != "EntityAlreadyExists":
            raise


def _managed(world: World, arn: str, document: str) -> str:
    name = arn.rsplit("/", 1)[-1]
    made = world.session.client("iam").create_policy(PolicyName=name, PolicyDocument=document)
    world._note(f"IAM policy {name}")
    return str(made["Policy"]["Arn"])


def _attach_user_grant(world: World, req: Mapping[str, Any]) -> None:
    _user(world, req["userName"])
    _managed(world, req["policyArn"], _INVOKE_ON_STAR)
    world.session.client("iam").attach_user_policy(UserName=req["userName"], PolicyArn=req["policyArn"])
    world._note(f"{req['policyArn']} (invoke on *) attached to user {req['userName']}")


def _iam_fix(world: World, d: dict[str, Any]) -> None:
    """A call that takes a grant away: the grant is made first (and judged, so its finding is
    active), then the call, which leaves the state the handler reads."""
    iam = world.session.client("iam")
    req, name = d["requestParameters"], d["eventName"]
    if name == "AttachUserPolicy":  # the grant itself: a customer policy invoking on *
        _attach_user_grant(world, req)
    elif name == "DeleteRolePolicy":
        grant = {**req, "policyDocument": _INVOKE_ON_STAR}
        _iam(world, {**d, "eventName": "PutRolePolicy", "requestParameters": grant})
        world.earlier("PutRolePolicy", grant)
        iam.delete_role_policy(RoleName=req["roleName"], PolicyName=req["policyName"])
    elif name == "DeleteUserPolicy":
        grant = {**req, "policyDocument": _INVOKE_ON_STAR}
        _iam(world, {**d, "eventName": "PutUserPolicy", "requestParameters": grant})
        world.earlier("PutUserPolicy", grant)
        iam.delete_user_policy(UserName=req["userName"], PolicyName=req["policyName"])
    elif name == "DetachRolePolicy":
        _iam(world, {**d, "eventName": "AttachRolePolicy"})
        world.earlier("AttachRolePolicy", req)
        iam.detach_role_policy(RoleName=req["roleName"], PolicyArn=req["policyArn"])
    elif name == "DetachUserPolicy":
        _attach_user_grant(world, req)
        world.earlier("AttachUserPolicy", req)
        iam.detach_user_policy(UserName=req["userName"], PolicyArn=req["policyArn"])
    elif name == "SetDefaultPolicyVersion":
        # v1 scoped, then v2 granting invocation on * made the default (and judged)
        arn = _managed(world, req["policyArn"], _SCOPED)
        grant = {"policyArn": arn, "policyDocument": _INVOKE_ON_STAR, "setAsDefault": True}
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_INVOKE_ON_STAR, SetAsDefault=True)
        world.earlier("CreatePolicyVersion", grant)
        iam.set_default_policy_version(PolicyArn=arn, VersionId=req["versionId"])
    elif name == "DeletePolicyVersion":
        # AWS refuses to delete the default version: the removed v2 (invoke on *) was not the
        # default, so the policy grants only v1's scoped invocation before and after the call.
        arn = _managed(world, req["policyArn"], _SCOPED)
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_INVOKE_ON_STAR, SetAsDefault=False)
        world._note(f"IAM policy {arn}: v1 scoped (default), v2 invoke on * (not the default)")
        iam.delete_policy_version(PolicyArn=arn, VersionId=req["versionId"])
    world._note(f"{name} (the call)")


def _group(world: World, name: str, *members: str) -> None:
    iam = world.session.client("iam")
    try:
        iam.create_group(GroupName=name)
        world._note(f"IAM group {name}")
    except ClientError as exc:
        if _code(exc) != "EntityAlreadyExists":
            raise
    for user in members:
        _user(world, user)
        iam.add_user_to_group(GroupName=name, UserName=user)
        world._note(f"user {user} in group {name}")


def _iam_group(world: World, d: dict[str, Any]) -> None:
    """A group's grant reaches its members: the group has one member (``analyst``) unless the
    call is the membership itself. A fixing call is staged after its grant, judged first."""
    iam = world.session.client("iam")
    req, name = d["requestParameters"], d["eventName"]
    group = str(req.get("groupName", ""))
    if name == "PutGroupPolicy":
        _group(world, group, "analyst")
        iam.put_group_policy(
            GroupName=group, PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
        )
    elif name == "AttachGroupPolicy":
        _group(world, group, "analyst")
        _managed(world, req["policyArn"], _INVOKE_ON_STAR)
        iam.attach_group_policy(GroupName=group, PolicyArn=req["policyArn"])
    elif name == "AddUserToGroup":
        _group(world, group)
        iam.put_group_policy(GroupName=group, PolicyName="invoke-models", PolicyDocument=_INVOKE_ON_STAR)
        _group(world, group, req["userName"])
    elif name == "DetachGroupPolicy":
        _iam_group(world, {**d, "eventName": "AttachGroupPolicy"})
        world.earlier("AttachGroupPolicy", req)
        iam.detach_group_policy(GroupName=group, PolicyArn=req["policyArn"])
    elif name == "DeleteGroupPolicy":
        grant = {**req, "policyDocument": _INVOKE_ON_STAR}
        _iam_group(world, {**d, "eventName": "PutGroupPolicy", "requestParameters": grant})
        world.earlier("PutGroupPolicy", grant)
        iam.delete_group_policy(GroupName=group, PolicyName=req["policyName"])
    elif name == "RemoveUserFromGroup":
        _iam_group(world, {**d, "eventName": "AddUserToGroup"})
        world.earlier("AddUserToGroup", req)
        iam.remove_user_from_group(GroupName=group, UserName=req["userName"])
    elif name == "UpdateAssumeRolePolicy":
        _role(world, req["roleName"])
        iam.update_assume_role_policy(RoleName=req["roleName"], PolicyDocument=req["policyDocument"])
    world._note(f"{name} (the call)")


def _flow_log(world: World, vpc: str, group: str, role: str) -> str:
    logs = world.session.client("logs")
    logs.create_log_group(logGroupName=group)
    return str(
        world.ec2.create_flow_logs(
            ResourceIds=[vpc],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=group,
            DeliverLogsPermissionArn=role,
        )["FlowLogIds"][0]
    )


def _flow_logs(world: World, d: dict[str, Any]) -> None:
    name = d["eventName"]
    if name == "CreateVpc":
        vpc_spec = d["responseElements"]["vpc"]
        world.vpc(vpc_spec["vpcId"], d["requestParameters"]["cidrBlock"], public=False)
        return
    if name == "CreateFlowLogs":
        # A model VPC (a model-tier group in it, so in flow_logs.scope) and the flow log the call made.
        req = d["requestParameters"]["CreateFlowLogsRequest"]
        vpc = world.resolve(str(_content(req["ResourceId"])))
        world.group(PRIVATE_MODEL_SG)
        fl = _flow_log(world, vpc, str(req["LogGroupName"]), str(req["DeliverLogsPermissionArn"]))
        world.ids[str(d["responseElements"]["CreateFlowLogsResponse"]["flowLogIdSet"]["item"])] = fl
        world._note(f"flow log {fl} (ALL) on {vpc} (the call)")
        return
    # DeleteFlowLogs: a VPC whose flow log Perimeter saw made (its CreateFlowLogs event, run
    # through the handler first, put it in the flow-log index), which the call deleted.
    sample_fl = str(_content(d["requestParameters"]["DeleteFlowLogsRequest"]["FlowLogId"]))
    vpc = world.vpc("vpc-0a1b2c3d4e5f60042", "10.42.0.0/16", public=False)
    role = "arn:aws:iam::123456789012:role/vpc-flow-logs"
    fl = _flow_log(world, vpc, "/vpc/team-flow-logs", role)
    world.ids[sample_fl] = fl
    world.earlier(
        "CreateFlowLogs",
        {
            "CreateFlowLogsRequest": {
                "ResourceId": {"content": vpc, "tag": 1},
                "ResourceType": "VPC",
                "TrafficType": "ALL",
                "LogDestinationType": "cloud-watch-logs",
                "LogGroupName": "/vpc/team-flow-logs",
                "DeliverLogsPermissionArn": role,
            }
        },
        {"CreateFlowLogsResponse": {"flowLogIdSet": {"item": fl}, "unsuccessful": ""}},
    )
    world.ec2.delete_flow_logs(FlowLogIds=[fl])
    world._note(f"flow log {fl} on {vpc}, then deleted (the call)")


_WORLD_SSH = {
    "items": [
        {
            "ipProtocol": "tcp",
            "fromPort": 22,
            "toPort": 22,
            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
        }
    ]
}


def _rule_set(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """An Authorize call's ``responseElements``, as CloudTrail records it, from the API's answer."""
    items = []
    for r in rules:
        item = {
            "groupOwnerId": r.get("GroupOwnerId"),
            "groupId": r["GroupId"],
            "securityGroupRuleId": r["SecurityGroupRuleId"],
            "isEgress": r["IsEgress"],
            "ipProtocol": r["IpProtocol"],
            "fromPort": r.get("FromPort", -1),
            "toPort": r.get("ToPort", -1),
        }
        for api, trail in (
            ("CidrIpv4", "cidrIpv4"),
            ("CidrIpv6", "cidrIpv6"),
            ("PrefixListId", "prefixListId"),
        ):
            if r.get(api):
                item[trail] = r[api]
        items.append(item)
    return {"_return": True, "securityGroupRuleSet": {"items": items}}


def _sg_fix(world: World, d: dict[str, Any]) -> None:
    """A person's fix of a group Perimeter reported: the offending rule was opened first and
    judged while Perimeter ran in dry run (so its finding is open, nothing revoked), then the
    person's call (revoke the rule, or delete the group), which leaves the state the handler reads."""
    name, req = d["eventName"], d["requestParameters"]
    gid = world.resolve(str(req["groupId"]))
    grant_name = (
        name.replace("Revoke", "Authorize") if name.startswith("Revoke") else "AuthorizeSecurityGroupIngress"
    )
    permissions = req["ipPermissions"] if name.startswith("Revoke") else _WORLD_SSH
    grant = {"groupId": gid, "ipPermissions": permissions}
    call = parse_event({**d, "eventName": grant_name, "requestParameters": grant, "responseElements": None})
    rules = [rule for change in extract_group_changes(call) for rule in change.rules]
    perms = [rule.to_permission() for rule in rules]
    egress = grant_name == "AuthorizeSecurityGroupEgress"
    ec2 = world.ec2
    authorize = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
    created = authorize(GroupId=gid, IpPermissions=perms).get("SecurityGroupRules", [])
    world._note(f"rule {', '.join(r.describe() for r in rules)} on {gid} (the one the person fixes)")
    world.earlier(grant_name, grant, _rule_set(created), dry_run=True)
    if name == "DeleteSecurityGroup":
        ec2.delete_security_group(GroupId=gid)
        world._note(f"security group {gid} deleted (the call)")
        return
    revoke = ec2.revoke_security_group_egress if egress else ec2.revoke_security_group_ingress
    revoke(GroupId=gid, IpPermissions=perms)
    world._note("the same rule revoked by the person (the call)")
    world.staged.groups.append(gid)


def _modify_prefix_list(world: World, d: dict[str, Any]) -> None:
    """A customer-managed list of partner ranges, named by the model tier's HTTPS rule; the call
    adds 0.0.0.0/0 to it (version 1 -> 2), which opens the group to the world."""
    req = d["requestParameters"]["ModifyManagedPrefixListRequest"]
    entry = {k: _content(v) for k, v in req["AddEntry"].items() if k != "tag"}
    gid = world.group(MODEL_SG)
    pl = world.ec2.create_managed_prefix_list(
        PrefixListName="partners",
        MaxEntries=10,
        AddressFamily="IPv4",
        Entries=[{"Cidr": "198.51.100.0/24", "Description": "partner A"}],
    )["PrefixList"]["PrefixListId"]
    world.ids[str(_content(req["PrefixListId"]))] = pl
    world.ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": pl}]}
        ],
    )
    world._note(f"prefix list {pl} (198.51.100.0/24, version 1) and tcp/443 from it on {gid}")
    version = world.ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]["Version"]
    world.ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=version, AddEntries=[entry])
    world._note(f"{entry['Cidr']} added to {pl} (the call)")
    world.staged.groups.append(gid)


# --- Bedrock (served by the embedded stand-in, moto_ext.py) -----------------------------------

_GUARDRAIL = "gr4h1ghpr0mp"  # the samples' guardrail id
_HIGH = {"filtersConfig": [{"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"}]}
_IMPORT = {
    "jobName": "import-deepseek-r1-distill-8b",
    "importedModelName": "deepseek-r1-distill-llama-8b",
    "roleArn": "arn:aws:iam::123456789012:role/bedrock-model-import",
    "modelDataSource": {
        "s3DataSource": {"s3Uri": "s3://ml-artifacts-123456789012/deepseek-r1-distill-llama-8b/"}
    },
}
_LOW = {"filtersConfig": [{"type": "PROMPT_ATTACK", "inputStrength": "LOW", "outputStrength": "NONE"}]}
_BASE = {"blockedInputMessaging": "Blocked.", "blockedOutputsMessaging": "Blocked."}
#: the Marketplace samples' group: the VPC's default group (the sample's name says so)
_MARKETPLACE_SG = "sg-0d3fa017000000001"


def _import_model(world: World, req: Mapping[str, Any]) -> str:
    arn = str(world.session.client("bedrock").create_model_import_job(**req)["jobArn"])
    world._note(f"Bedrock model import job {req['jobName']} -> imported model {req['importedModelName']}")
    return arn


def _guardrail(world: World, req: Mapping[str, Any]) -> str:
    made = world.session.client("bedrock").create_guardrail(**req)
    world.ids[_GUARDRAIL] = made["guardrailId"]
    world._note(f"Bedrock guardrail {made['guardrailId']} {req['name']!r} for {_GUARDRAIL}")
    return str(made["guardrailId"])


def _bedrock(world: World, d: dict[str, Any]) -> None:
    br = world.session.client("bedrock")
    name, req = d["eventName"], d["requestParameters"]
    if name == "CreateModelImportJob":
        world.ids[str(d["responseElements"]["jobArn"])] = _import_model(world, req)
        return
    if name == "CreateGuardrail":
        # A model Bedrock serves, imported (and judged) while no guardrail blocked prompt
        # attacks: the account's PER-GR-1 finding is open when the guardrail comes.
        job = _import_model(world, _IMPORT)
        world.earlier("CreateModelImportJob", _IMPORT, {"jobArn": job})
        _guardrail(world, req)
        return
    if name in ("UpdateGuardrail", "DeleteGuardrail"):
        # An imported model served, guarded by a HIGH prompt-attack guardrail (version 1 published).
        _import_model(world, _IMPORT)
        gid = _guardrail(world, {**_BASE, "name": "prompt-attack-high", "contentPolicyConfig": _HIGH})
        br.create_guardrail_version(guardrailIdentifier=gid)
        if name == "UpdateGuardrail":
            br.update_guardrail(**{**req, "guardrailIdentifier": gid})
            world._note(f"guardrail {gid} version 1 published, then its DRAFT updated (the call)")
        else:
            br.delete_guardrail(guardrailIdentifier=gid)
            world._note(f"guardrail {gid} deleted (the call)")
        return
    if name == "RegisterMarketplaceModelEndpoint":
        # A SageMaker endpoint of the account, its model outside any VPC, registered with
        # Bedrock (the call); a HIGH prompt-attack guardrail exists, so the VPC is what is judged.
        arn = str(req["endpointIdentifier"])
        endpoint_name = arn.rsplit("/", 1)[-1]
        _guardrail(world, {**_BASE, "name": "prompt-attack-high", "contentPolicyConfig": _HIGH})
        _endpoint_config(world, f"{endpoint_name}-config")
        real = world.session.client("sagemaker").create_endpoint(
            EndpointName=endpoint_name, EndpointConfigName=f"{endpoint_name}-config"
        )["EndpointArn"]
        world.ids[arn] = str(real)
        world._note(f"SageMaker endpoint {endpoint_name} (model outside any VPC)")
        br.register_marketplace_model_endpoint(
            endpointIdentifier=real, modelSourceIdentifier=req["modelSourceIdentifier"]
        )
        world._note(f"endpoint {endpoint_name} registered with Bedrock (the call)")
        return
    # Marketplace model endpoints
    world.ids[_MARKETPLACE_SG] = world.group(DEFAULT_SG)
    arn = str(req.get("endpointArn") or d["responseElements"]["marketplaceModelEndpoint"]["endpointArn"])
    endpoint_name = arn.rsplit("/", 1)[-1]
    if name == "CreateMarketplaceModelEndpoint":
        made = _rewrite(req, {s: world.resolve(s) for s in _ID.findall(json.dumps(req))})
    else:
        # The endpoint as the Create sample made it (in the VPC, on its default group).
        made = {
            "modelSourceIdentifier": (
                "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/"
                "deepseek-llm-r1-distill-llama-8b/2.0.0"
            ),
            "endpointName": endpoint_name,
            "acceptEula": True,
            "endpointConfig": {
                "sageMaker": {
                    "initialInstanceCount": 1,
                    "instanceType": "ml.g6.12xlarge",
                    "executionRole": "arn:aws:iam::123456789012:role/sagemaker-deepseek-execution",
                    "vpc": {
                        "subnetIds": [world.resolve(PRIVATE_SUBNET)],
                        "securityGroupIds": [world.ids[_MARKETPLACE_SG]],
                    },
                }
            },
        }
    real = br.create_marketplace_model_endpoint(**made)["marketplaceModelEndpoint"]["endpointArn"]
    world.ids[arn] = real
    world._note(f"Bedrock Marketplace endpoint {endpoint_name} in the VPC, on its default group")
    if name == "UpdateMarketplaceModelEndpoint":
        br.update_marketplace_model_endpoint(endpointArn=real, endpointConfig=req["endpointConfig"])
        world._note(f"endpoint {endpoint_name} updated (the call)")
    elif name == "DeleteMarketplaceModelEndpoint":
        br.delete_marketplace_model_endpoint(endpointArn=real)
        world._note(f"endpoint {endpoint_name} deleted (the call)")


# PER-NET-1 (NetGuard): a model server's ENI in a VPC of its own, every hop from the internet
# open (gateway, route table, subnet, Elastic IP, network ACL, a group rule from the world); each
# sample's call is made as the caller made it, from the state just before it.
NET_VPC, NET_IGW, NET_RTB, NET_SUBNET = (
    "vpc-0a1b2c3d4e5f60077",
    "igw-0a1b2c3d4e5f60077",
    "rtb-0a1b2c3d4e5f60077",
    "subnet-0a1b2c3d4e5f60077",
)
NET_ASSOC, NET_ASSOC2 = "rtbassoc-0a1b2c3d4e5f60077", "rtbassoc-0a1b2c3d4e5f60078"
NET_ACL, NET_ACLASSOC, NET_ACLASSOC2 = (
    "acl-0a1b2c3d4e5f60077",
    "aclassoc-0a1b2c3d4e5f60077",
    "aclassoc-0a1b2c3d4e5f60078",
)
NET_ENI, NET_ALLOC, NET_EIPASSOC = (
    "eni-0a0000000000000c3",
    "eipalloc-0a1b2c3d4e5f60001",
    "eipassoc-0a1b2c3d4e5f60001",
)
_WORLD_8080 = {
    "RuleNumber": 100,
    "Protocol": "6",
    "RuleAction": "allow",
    "Egress": False,
    "CidrBlock": "0.0.0.0/0",
    "PortRange": {"From": 8080, "To": 8080},
}


def _net_world(world: World, name: str) -> dict[str, str]:
    ec2, ids = world.ec2, world.ids
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ids.update({NET_VPC: vpc, NET_SUBNET: subnet, NET_IGW: igw, NET_RTB: table})
    if name == "ReplaceRouteTableAssociation":  # the subnet starts on a private table
        private = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ids[NET_ASSOC] = ec2.associate_route_table(RouteTableId=private, SubnetId=subnet)["AssociationId"]
    else:
        ids[NET_ASSOC] = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    # The subnet's own network ACL: the model port from the world in, replies to ephemeral ports out.
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, **_WORLD_8080)
    ec2.create_network_acl_entry(
        NetworkAclId=acl,
        RuleNumber=100,
        Protocol="6",
        RuleAction="allow",
        Egress=True,
        CidrBlock="0.0.0.0/0",
        PortRange={"From": 1024, "To": 65535},
    )
    ids[NET_ACL] = acl
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "NetworkAcls"
    ][0]
    assoc = next(a["NetworkAclAssociationId"] for a in current["Associations"] if a["SubnetId"] == subnet)
    if name == "ReplaceNetworkAclAssociation":  # the subnet starts on an ACL that admits nothing
        closed = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
        assoc = ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=closed)[
            "NewAssociationId"
        ]
        ids[NET_ACLASSOC] = assoc
    else:
        ids[NET_ACLASSOC] = ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl)[
            "NewAssociationId"
        ]
    sg = ec2.create_security_group(
        GroupName="vllm-deepseek",
        Description="model tier",
        VpcId=vpc,
        TagSpecifications=_tags("security-group", {"perimeter:tier": "model"}),
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg], Description="vLLM DeepSeek-R1 server")[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ids.update({NET_ENI: eni, NET_ALLOC: alloc})
    ids[NET_EIPASSOC] = ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)["AssociationId"]
    world._note(
        f"VPC {vpc}: gateway {igw}, route table {table} (0.0.0.0/0 -> {igw}), subnet {subnet}, "
        f"network ACL {acl} (tcp/8080 in, ephemeral ports out), model-tier group {sg} (tcp/8080 from "
        f"0.0.0.0/0), ENI {eni} with Elastic IP {alloc}"
    )
    return ids


def _net_path(world: World, d: dict[str, Any]) -> None:  # noqa: C901 - one branch per call
    """The state just before the call (the hop it opens closed; for a closing call, the whole
    path open and judged first, so a finding is there to resolve), then the call."""
    name = str(d["eventName"])
    ids = _net_world(world, name)
    ec2 = world.ec2
    vpc, igw, table, subnet, acl = (ids[k] for k in (NET_VPC, NET_IGW, NET_RTB, NET_SUBNET, NET_ACL))
    eni, alloc = ids[NET_ENI], ids[NET_ALLOC]
    route = {"RouteTableId": table, "DestinationCidrBlock": "0.0.0.0/0"}
    if name == "AttachInternetGateway":
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    elif name == "CreateRoute":
        ec2.delete_route(**route)
        ec2.create_route(**route, GatewayId=igw)
    elif name == "ReplaceRoute":
        ec2.replace_route(**route, GatewayId=igw)
    elif name == "AssociateRouteTable":
        ec2.disassociate_route_table(AssociationId=ids[NET_ASSOC])
        ids[NET_ASSOC] = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    elif name == "ReplaceRouteTableAssociation":
        ids[NET_ASSOC2] = ec2.replace_route_table_association(
            AssociationId=ids[NET_ASSOC], RouteTableId=table
        )["NewAssociationId"]
    elif name == "ReplaceNetworkAclAssociation":
        ids[NET_ACLASSOC2] = ec2.replace_network_acl_association(
            AssociationId=ids[NET_ACLASSOC], NetworkAclId=acl
        )["NewAssociationId"]
    elif name == "ModifySubnetAttribute":
        ec2.disassociate_address(AssociationId=ids[NET_EIPASSOC])
        ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    elif name == "CreateNetworkAclEntry":
        ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Egress=False)
        ec2.create_network_acl_entry(NetworkAclId=acl, **_WORLD_8080)
    elif name == "ReplaceNetworkAclEntry":
        ec2.replace_network_acl_entry(NetworkAclId=acl, **{**_WORLD_8080, "RuleAction": "deny"})
        ec2.replace_network_acl_entry(NetworkAclId=acl, **_WORLD_8080)
    elif name == "AssociateAddress":
        ec2.disassociate_address(AssociationId=ids[NET_EIPASSOC])
        ids[NET_EIPASSOC] = ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)["AssociationId"]
    elif name == "DetachInternetGateway":
        world.earlier("AttachInternetGateway", {"internetGatewayId": igw, "vpcId": vpc}, {"_return": True})
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    elif name == "DeleteRoute":
        world.earlier(
            "CreateRoute", {"routeTableId": table, "destinationCidrBlock": "0.0.0.0/0", "gatewayId": igw}
        )
        ec2.delete_route(**route)
    elif name == "DisassociateRouteTable":
        world.earlier(
            "AssociateRouteTable",
            {"routeTableId": table, "subnetId": subnet},
            {"associationId": ids[NET_ASSOC], "associationState": {"state": "associated"}},
        )
        ec2.disassociate_route_table(AssociationId=ids[NET_ASSOC])
    elif name == "DeleteNetworkAclEntry":
        world.earlier(
            "CreateNetworkAclEntry",
            {
                "networkAclId": acl,
                "ruleNumber": 100,
                "egress": False,
                "ruleAction": "allow",
                "icmpTypeCode": {},
                "portRange": {"from": 8080, "to": 8080},
                "aclProtocol": "6",
                "cidrBlock": "0.0.0.0/0",
            },
        )
        ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Egress=False)
    elif name == "DisassociateAddress":
        world.earlier(
            "AssociateAddress",
            {"allocationId": alloc, "networkInterfaceId": eni, "allowReassociation": False},
            {"_return": True, "associationId": ids[NET_EIPASSOC]},
        )
        ec2.disassociate_address(AssociationId=ids[NET_EIPASSOC])
    world._note(f"{name} (the call)")


def _published(world: World, filters: Mapping[str, Any], versions: int, name: str) -> str:
    """The samples' guardrail with ``versions`` published versions, each as ``filters`` blocks."""
    gid = _guardrail(world, {**_BASE, "name": name, "contentPolicyConfig": filters})
    br = world.session.client("bedrock")
    for _ in range(versions):
        br.create_guardrail_version(guardrailIdentifier=gid)
    world._note(f"guardrail {gid}: versions 1..{versions} published")
    return gid


def _bedrock_doors(world: World, d: dict[str, Any]) -> None:
    """Issue 9's Bedrock doors: guardrail versions, enforced configurations, custom model
    deployments and resource policies (all served by the embedded stand-in, moto_ext.py)."""
    br = world.session.client("bedrock")
    name, req, resp = d["eventName"], d["requestParameters"], d.get("responseElements") or {}
    if name == "CreateCustomModelDeployment":
        # an imported model, deployed on demand (the call) while no guardrail blocks prompt attacks
        job = _import_model(world, _IMPORT)
        model = str(br.get_model_import_job(jobIdentifier=job)["importedModelArn"])
        world.ids[str(req["modelArn"])] = model
        made = br.create_custom_model_deployment(
            modelDeploymentName=req["modelDeploymentName"], modelArn=model
        )
        world.ids[str(resp["customModelDeploymentArn"])] = str(made["customModelDeploymentArn"])
        world._note(f"custom model deployment {req['modelDeploymentName']} of {model} (the call)")
        return
    if name in ("PutResourcePolicy", "DeleteResourcePolicy"):
        # Bedrock keeps a resource's policy on its own: the policy shares the model with anyone
        arn = str(req["resourceArn"])
        policy = req.get("resourcePolicy") or _SHARE_WITH_ANYONE.replace("RESOURCE", arn)
        br.put_resource_policy(resourceArn=arn, resourcePolicy=policy)
        if name == "PutResourcePolicy":
            world._note(f"resource policy of {arn} (the call)")
            return
        world._note(f"resource policy of {arn}, sharing it with anyone")
        world.earlier(
            "PutResourcePolicy", {"resourceArn": arn, "resourcePolicy": policy}, {"resourceArn": arn}
        )
        br.delete_resource_policy(resourceArn=arn)
        world._note(f"resource policy of {arn} deleted (the call)")
        return
    # a model Bedrock serves, imported: what the guardrails must protect
    _import_model(world, _IMPORT)
    if name == "CreateGuardrailVersion":
        # versions 1 and 2 blocked prompt attacks at HIGH; the DRAFT was lowered; the call publishes it
        gid = _published(world, _HIGH, int(resp["version"]) - 1, "prompt-attack-high")
        br.update_guardrail(
            guardrailIdentifier=gid, name="prompt-attack-high", contentPolicyConfig=_LOW, **_BASE
        )
        made = br.create_guardrail_version(guardrailIdentifier=gid, description=req.get("description", ""))
        world._note(
            f"guardrail {gid}: DRAFT lowered to LOW, published as version {made['version']} (the call)"
        )
        return
    conf = req.get("guardrailInferenceConfig") or {}
    if name == "PutEnforcedGuardrailConfiguration":
        # the guardrail enforced on every invocation blocks prompt attacks at LOW only
        version = str(conf["guardrailVersion"])
        gid = _published(world, _LOW, int(version), "prompt-attack-low")
        made = br.put_enforced_guardrail_configuration(
            guardrailInferenceConfig={"guardrailIdentifier": gid, "guardrailVersion": version}
        )
        world.ids[str(resp["configId"])] = str(made["configId"])
        world._note(f"guardrail {gid} v{version} enforced on every invocation (the call)")
        return
    # DeleteEnforcedGuardrailConfiguration: the enforced guardrail was a strong one, judged first
    gid = _published(world, _HIGH, 1, "prompt-attack-high")
    put = {"guardrailInferenceConfig": {"guardrailIdentifier": gid, "guardrailVersion": "1"}}
    made = br.put_enforced_guardrail_configuration(**put)
    world.ids[str(req["configId"])] = str(made["configId"])
    world._note(f"guardrail {gid} v1 enforced on every invocation")
    world.earlier(
        "PutEnforcedGuardrailConfiguration",
        put,
        {"configId": made["configId"], "updatedAt": "2026-11-20T10:41:00Z", "updatedBy": "dana"},
    )
    br.delete_enforced_guardrail_configuration(configId=made["configId"])
    world._note(f"enforced configuration {made['configId']} deleted (the call)")


_SHARE_WITH_ANYONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ShareWithEveryone",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["bedrock:InvokeModel", "bedrock:GetCustomModel"],
                "Resource": "RESOURCE",
            }
        ],
    }
)

#: the Studio domain as the CreateDomain sample made it (apps with direct internet access)
_STUDIO = {
    "domainName": "ml-studio",
    "authMode": "IAM",
    "defaultUserSettings": {"executionRole": "arn:aws:iam::123456789012:role/sagemaker-deepseek-execution"},
    "subnetIds": [PRIVATE_SUBNET],
    "vpcId": "vpc-0a1b2c3d4e5f60042",
    "appNetworkAccessType": "PublicInternetOnly",
}


def _update_domain(world: World, d: dict[str, Any]) -> None:
    """The public domain was made (and judged) first; the call moves its apps into the VPC
    (UpdateDomain: the runner's SageMaker extension, moto_ext.py)."""
    req = d["requestParameters"]
    sample_id = str(req["domainId"])
    _domain(world, {"requestParameters": _STUDIO, "responseElements": {"domainId": sample_id}})
    real = world.ids[sample_id]
    sm = world.session.client("sagemaker")
    arn = sm.describe_domain(DomainId=real)["DomainArn"]
    made = _rewrite(_STUDIO, {s: world.resolve(s) for s in _ID.findall(json.dumps(_STUDIO))})
    world.earlier("CreateDomain", made, {"domainArn": arn, "domainId": real})
    kwargs: dict[str, Any] = {"DomainId": real}
    if req.get("appNetworkAccessType"):
        kwargs["AppNetworkAccessType"] = req["appNetworkAccessType"]
    groups = (req.get("defaultUserSettings") or {}).get("securityGroups")
    if groups:
        kwargs["DefaultUserSettings"] = {"SecurityGroups": [world.resolve(g) for g in groups]}
    sm.update_domain(**kwargs)
    world._note(f"domain {real} set to {req.get('appNetworkAccessType')} (the call)")


_STAGERS = {
    "AuthorizeSecurityGroupIngress": _authorize,
    "AuthorizeSecurityGroupEgress": _authorize,
    "ModifySecurityGroupRules": _modify_rules,
    "CreateSecurityGroup": _create_group,
    "RunInstances": _run_instances,
    "CreateNetworkInterface": _create_eni,
    "ModifyNetworkInterfaceAttribute": _modify_eni,
    "ModifyInstanceAttribute": _modify_instance,
    "CreateModel": _model_posture,
    "CreateEndpointConfig": _model_posture,
    "CreateEndpoint": _model_posture,
    "UpdateEndpoint": _model_posture,
    "CreateNotebookInstance": _model_posture,
    "UpdateNotebookInstance": _model_posture,
    "AttachRolePolicy": _iam,
    "PutRolePolicy": _iam,
    "PutUserPolicy": _iam,
    "CreatePolicyVersion": _iam,
    "AttachUserPolicy": _iam_fix,
    "DeleteRolePolicy": _iam_fix,
    "DeleteUserPolicy": _iam_fix,
    "DetachRolePolicy": _iam_fix,
    "DetachUserPolicy": _iam_fix,
    "SetDefaultPolicyVersion": _iam_fix,
    "DeletePolicyVersion": _iam_fix,
    "PutGroupPolicy": _iam_group,
    "AttachGroupPolicy": _iam_group,
    "AddUserToGroup": _iam_group,
    "DetachGroupPolicy": _iam_group,
    "DeleteGroupPolicy": _iam_group,
    "RemoveUserFromGroup": _iam_group,
    "UpdateAssumeRolePolicy": _iam_group,
    "CreateVpcEndpoint": _create_vpc_endpoint,
    "ModifyVpcEndpoint": _modify_vpc_endpoint,
    "CreateDomain": _domain,
    "UpdateDomain": _update_domain,
    "CreateLaunchTemplate": _launch_template,
    "CreateLaunchTemplateVersion": _launch_template,
    "ModifyLaunchTemplate": _launch_template,
    "CreateVpc": _flow_logs,
    "DeleteFlowLogs": _flow_logs,
    "CreateFlowLogs": _flow_logs,
    "RevokeSecurityGroupIngress": _sg_fix,
    "RevokeSecurityGroupEgress": _sg_fix,
    "DeleteSecurityGroup": _sg_fix,
    "ModifyManagedPrefixList": _modify_prefix_list,
    "CreateGuardrail": _bedrock,
    "UpdateGuardrail": _bedrock,
    "DeleteGuardrail": _bedrock,
    "CreateModelImportJob": _bedrock,
    "CreateMarketplaceModelEndpoint": _bedrock,
    "UpdateMarketplaceModelEndpoint": _bedrock,
    "DeleteMarketplaceModelEndpoint": _bedrock,
    "AttachInternetGateway": _net_path,
    "CreateRoute": _net_path,
    "ReplaceRoute": _net_path,
    "AssociateRouteTable": _net_path,
    "ReplaceRouteTableAssociation": _net_path,
    "ReplaceNetworkAclAssociation": _net_path,
    "ModifySubnetAttribute": _net_path,
    "CreateNetworkAclEntry": _net_path,
    "ReplaceNetworkAclEntry": _net_path,
    "AssociateAddress": _net_path,
    "DetachInternetGateway": _net_path,
    "DeleteRoute": _net_path,
    "DisassociateRouteTable": _net_path,
    "DeleteNetworkAclEntry": _net_path,
    "DisassociateAddress": _net_path,
    "RegisterMarketplaceModelEndpoint": _bedrock,
    "CreateGuardrailVersion": _bedrock_doors,
    "PutEnforcedGuardrailConfiguration": _bedrock_doors,
    "DeleteEnforcedGuardrailConfiguration": _bedrock_doors,
    "CreateCustomModelDeployment": _bedrock_doors,
    "PutResourcePolicy": _bedrock_doors,
    "DeleteResourcePolicy": _bedrock_doors,
}


_RULE_TEXT = re.compile(r"(?P<proto>tcp|udp)/(?P<port>\d+) from (?P<cidr>[0-9a-f.:]+/\d+)")


def _custom_action(world: World, session: Any, event: dict[str, Any]) -> None:
    """The Security Hub custom action's sample: each finding's remediation happens first, so
    the undo has an audit record and a finding to work on. The rule the finding names is
    opened on its group by the finding's actor, that call is run through the routed handlers
    (SgGuard revokes it, records it, reports it), and the sample's finding is replaced by the
    one Security Hub now stores (its Id and audit id are this account's)."""
    from perimeter_local.cloudtrail import authorize_event

    hub = session.client("securityhub")
    account = session.client("sts").get_caller_identity()["Account"]
    region = session.region_name
    findings = []
    for finding in event["detail"].get("findings") or []:
        fields = finding.get("ProductFields") or {}
        resource = str(finding.get("Id", "")).rsplit("/", 1)[-1]
        opened = _RULE_TEXT.fullmatch(str(fields.get("perimeter/rules", "")))
        if not resource.startswith("sg-") or opened is None or world.run_first is None:
            findings.append(finding)  # nothing this stager knows how to build: left as it is
            continue
        gid = world.group(resource)
        port = int(opened["port"])
        perm = {
            "IpProtocol": opened["proto"],
            "FromPort": port,
            "ToPort": port,
            **({"Ipv6Ranges": [{"CidrIpv6": opened["cidr"]}]} if ":" in opened["cidr"] else {}),
            **({"IpRanges": [{"CidrIp": opened["cidr"]}]} if ":" not in opened["cidr"] else {}),
        }
        created = world.ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
        call = authorize_event(
            account=account,
            region=region,
            group_id=gid,
            permissions=[perm],
            created_rules=created.get("SecurityGroupRules"),
            actor_arn=fields.get("perimeter/actor"),
        )
        results = world.run_first(call)
        world.staged.earlier.append(
            {
                "event_name": call["detail"]["eventName"],
                "statuses": {
                    r["function"]: (r["result"]["status"] if r["ok"] else r["error"]) for r in results
                },
            }
        )
        world._note(
            f"{opened.group(0)} opened on {gid} and run through the handlers (the remediation to undo)"
        )
        real_id = f"perimeter/{finding.get('GeneratorId')}/{account}/{region}/{gid}"
        stored = [f for f in hub.get_findings()["Findings"] if f["Id"] == real_id]
        findings.extend(stored or [finding])
        world.staged.groups.append(gid)
    event["detail"]["findings"] = findings


def stage(
    session: Any,
    event: Mapping[str, Any],
    *,
    run_first: Callable[..., list[dict[str, Any]]] | None = None,
    extended: bool = False,
) -> Staged:
    """Build what the event assumes, make its call, return it rewritten to the real ids.

    ``run_first`` runs an earlier event through the routed handlers: a call that undoes another
    (a fix) is staged as that other call, judged, then the fix, so a finding is there to resolve.
    ``extended``: the account is the embedded server with the runner's moto extensions."""
    event = copy.deepcopy(dict(event))
    staged = Staged(event=event)
    d = event.get("detail")
    if event.get("detail-type") == "Security Hub Findings - Custom Action" and isinstance(d, dict):
        world = World(session, staged, event, run_first)
        _custom_action(world, session, event)
        staged.event = event
        staged.ids = {k: v for k, v in staged.ids.items() if k != v}
        return staged
    if not isinstance(d, dict) or "eventName" not in d:
        return staged  # not a CloudTrail call: nothing to build (the handler rejects it)
    name = str(d["eventName"])
    if name in UNSUPPORTED and not extended:
        staged.unsupported = UNSUPPORTED[name]
        return staged
    stager = _STAGERS.get(name)
    if stager is None:
        return staged
    world = World(session, staged, event, run_first)
    failed_call = bool(d.get("errorCode"))
    if failed_call:
        # The call changed nothing: only the resources it named exist.
        for sample_id in sorted(set(_ID.findall(json.dumps(d.get("requestParameters"))))):
            world.resolve(sample_id)
    else:
        stager(world, d)
    # Ids the event names but the call did not create (a group it references, a subnet...).
    for sample_id in sorted(set(_ID.findall(json.dumps(d)))):
        if not sample_id.startswith(("sgr-", "fl-")) and sample_id not in staged.ids:
            world.resolve(sample_id)
    staged.event = _rewrite(event, staged.ids)
    staged.ids = {k: v for k, v in staged.ids.items() if k != v}
    return staged
