"""Demo scene: a default SG with dependants and a world-open rule, closed without cutting anyone off.

An instance launched without a security group and a standalone ENI land on the VPC's default
SG, which someone has opened to the world on SSH. The launch reaches DefaultSgGuard, which
moves both to an interim group (the default SG's rules minus the world-open one, its
self-reference now pointing at the interim group) and only then empties the default SG.
"""

from __future__ import annotations

from typing import Any

from perimeter.core.events import wrap_in_envelope

from perimeter_local.cloudtrail import record

TITLE = "Default security group: move its dependants, then close it (PER-DSG-1/2)"


def _groups(ec2: Any, eni_ids: list[str]) -> dict[str, list[str]]:
    found = ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"]
    return {n["NetworkInterfaceId"]: [g["GroupId"] for g in n["Groups"]] for n in found}


def _rules(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    return list(
        ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
            "SecurityGroupRules"
        ]
    )


def play(demo: Any) -> None:
    ec2 = demo.session.client("ec2")
    d = demo.deployment
    dsg, subnet = d["default_sg_id"], d["private_subnet_id"]
    # AWS gives every default SG "all traffic from itself"; the embedded account (moto) does not.
    if not any(r.get("ReferencedGroupInfo", {}).get("GroupId") == dsg for r in _rules(ec2, dsg)):
        ec2.authorize_security_group_ingress(
            GroupId=dsg, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": dsg}]}]
        )
    ec2.authorize_security_group_ingress(
        GroupId=dsg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    demo.say(f"Default SG {dsg}: all traffic from itself, plus tcp/22 from 0.0.0.0/0 (someone's quick fix).")
    eni = ec2.create_network_interface(SubnetId=subnet, Description="feature-store sidecar")[
        "NetworkInterface"
    ]
    launched = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet)[
        "Instances"
    ][0]
    instance_eni = launched["NetworkInterfaces"][0]["NetworkInterfaceId"]
    dependants = [instance_eni, eni["NetworkInterfaceId"]]
    demo.say(
        f"Instance {launched['InstanceId']} (no security group named) and ENI {dependants[1]} sit on it."
    )
    groups = {"items": [{"groupId": dsg, "groupName": "default"}]}
    response = {
        "reservationId": launched.get("ReservationId", "r-demo"),
        "groupSet": {},
        "instancesSet": {
            "items": [
                {
                    "instanceId": launched["InstanceId"],
                    "subnetId": subnet,
                    "vpcId": d["vpc_id"],
                    "groupSet": groups,
                    "networkInterfaceSet": {
                        "items": [{"networkInterfaceId": instance_eni, "groupSet": groups}]
                    },
                }
            ]
        },
    }
    request = {
        "instancesSet": {"items": [{"imageId": "ami-12345678", "minCount": 1, "maxCount": 1}]},
        "subnetId": subnet,
    }
    event = wrap_in_envelope(
        record(
            "RunInstances", "ec2.amazonaws.com", request, response, account=demo.account, region=demo.region
        )
    )
    results = demo.route(event, "RunInstances without a security group (lands on the default SG)")
    mine = [r for r in results if r.get("ok") and isinstance(r.get("result"), dict) and "vpcs" in r["result"]]
    demo.check(len(mine) == 1, "DefaultSgGuard handled the launch")
    if not mine:
        return
    summary = mine[0]["result"]["vpcs"][0]
    interim = summary["interim_group_id"]
    for moved in summary["moved"]:
        demo.say(f"    moved {moved['eni']}: {', '.join(moved['before'])} -> {', '.join(moved['after'])}")
    for left in summary["left_out_of_interim"]:
        demo.say(f"    not copied to the interim group: {left}")
    demo.say(f"    audit record {summary['audit_id']} (undo: perimeter restore <id>)")
    after = _groups(ec2, dependants)
    demo.check(
        all(g == [interim] for g in after.values()), f"both dependants are on interim SG {interim} only"
    )
    demo.check(_rules(ec2, dsg) == [], f"default SG {dsg} has no rules left")
    interim_rules = _rules(ec2, interim)
    demo.check(
        any(
            not r["IsEgress"]
            and r["IpProtocol"] == "-1"
            and r.get("ReferencedGroupInfo", {}).get("GroupId") == interim
            for r in interim_rules
        ),
        "traffic between dependants preserved: the interim SG allows all traffic from itself",
    )
    demo.check(
        not any(r.get("CidrIpv4") == "0.0.0.0/0" and not r["IsEgress"] for r in interim_rules),
        "the world-open SSH rule was not carried over",
    )
