"""A synthetic CloudTrail history for ``perimeter replay``'s benchmark and tests.

Written the way a trail writes it (``AWSLogs/<account>/CloudTrail/<region>/<y>/<m>/<d>/``,
gzip files of ``{"Records": [...]}``), streamed file by file so a million records never sit
in memory. The mix is a trail's: mostly reads and calls no rule routes, some failed calls, and
routed security-group, IAM, SageMaker and VPC calls, some of them violating.

Each kind of record states what the default policy says of it (``EXPECTED``): the controls
it violates and which of those ``enforce`` would remediate. Those expectations are written
from the controls' definitions (DESIGN.md §2, ``policy/default.yaml``), not computed by the
evaluation, so a test comparing them with a replay's tally can fail.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
REGION = "eu-west-1"
DEPLOYER = f"arn:aws:sts::{ACCOUNT}:assumed-role/TerraformDeploy"
HUMANS = [f"arn:aws:iam::{ACCOUNT}:user/{n}" for n in ("alice", "bob", "carol", "dave", "erin")]
SERVICE_ROLES = [
    f"arn:aws:sts::{ACCOUNT}:assumed-role/{n}" for n in ("EcsTask", "LambdaExec", "Ci", "Backup")
]

#: kind -> (controls violated, controls enforce would remediate) under policy/default.yaml
#: (with ``flow_logs.scope: all-vpcs`` a new VPC also violates PER-FL-1, which enforce remediates)
EXPECTED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # tcp/22 from 0.0.0.0/0: world-open on a non-public port, and a high-risk port from outside
    "world_ssh": (frozenset({"PER-SG-1", "PER-SG-2"}), frozenset({"PER-SG-1", "PER-SG-2"})),
    # all traffic from 0.0.0.0/0: world, high-risk ports included, all protocols from outside
    "world_all": (
        frozenset({"PER-SG-1", "PER-SG-2", "PER-SG-3"}),
        frozenset({"PER-SG-1", "PER-SG-2", "PER-SG-3"}),
    ),
    "world_https": (frozenset(), frozenset()),  # tcp/443 is on the public allow-list
    "office_ssh": (frozenset(), frozenset()),  # a /32: not the world, and not provably outside the VPC
    "egress_all": (frozenset(), frozenset()),  # unrestricted egress matters on the model tier only
    # a model-tier group is created with AWS's default all-traffic egress: PER-SG-4, detect
    "model_group": (frozenset({"PER-SG-4"}), frozenset()),
    "plain_group": (frozenset(), frozenset()),
    # sagemaker:InvokeEndpoint on "*": PER-IAM-1, detect only
    "invoke_star": (frozenset({"PER-IAM-1"}), frozenset()),
    "invoke_scoped": (frozenset(), frozenset()),
    # a model without VpcConfig and without network isolation: PER-VPC-1 and PER-VPC-2, detect
    "model_public": (frozenset({"PER-VPC-1", "PER-VPC-2"}), frozenset()),
    "model_private": (frozenset(), frozenset()),
    # a new VPC has no flow log, but holds no model yet: outside flow_logs.scope (model-vpcs)
    "new_vpc": (frozenset(), frozenset()),
    "run_instances": (frozenset(), frozenset()),  # default-SG checks need account state
    "failed_authorize": (frozenset(), frozenset()),  # errorCode: EventBridge never routes it
}
ROUTED_KINDS = frozenset(k for k in EXPECTED if k != "failed_authorize")

#: (kind, weight): about 18% routed, the rest reads and unrouted writes
MIX: list[tuple[str, int]] = [
    ("noise", 800),
    ("failed_authorize", 20),
    ("world_ssh", 12),
    ("world_all", 4),
    ("world_https", 20),
    ("office_ssh", 30),
    ("egress_all", 10),
    ("model_group", 4),
    ("plain_group", 16),
    ("invoke_star", 5),
    ("invoke_scoped", 15),
    ("model_public", 3),
    ("model_private", 7),
    ("new_vpc", 4),
    ("run_instances", 50),
]
NOISE = [
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("ec2.amazonaws.com", "DeleteTags"),  # not RevokeSecurityGroupIngress: routed since issue 8
    ("ec2.amazonaws.com", "CreateTags"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("kms.amazonaws.com", "Decrypt"),
    ("logs.amazonaws.com", "CreateLogStream"),
    ("iam.amazonaws.com", "GetRole"),
    ("sagemaker.amazonaws.com", "DescribeEndpoint"),
    ("cloudwatch.amazonaws.com", "PutMetricData"),
]


@dataclass
class Written:
    """What was written: records per kind, and the expected per-control tallies."""

    records: int = 0
    files: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    #: control -> events violating it; control -> events enforce would remediate
    events: Counter[str] = field(default_factory=Counter)
    remediate: Counter[str] = field(default_factory=Counter)
    #: actor (exemption pattern) -> would-remediate findings
    remediate_by_actor: Counter[str] = field(default_factory=Counter)

    @property
    def routed(self) -> int:
        return sum(n for k, n in self.kinds.items() if k in ROUTED_KINDS)


def _actor(rng: random.Random, kind: str) -> tuple[dict[str, Any], str]:
    """(userIdentity, exemption pattern). The deployer makes most changes, as in real accounts."""
    roll = rng.random()
    if kind == "noise":
        arn = rng.choice(SERVICE_ROLES) if roll < 0.7 else rng.choice(HUMANS)
    else:
        arn = DEPLOYER if roll < 0.75 else rng.choice(HUMANS)
    if ":assumed-role/" in arn:
        role = arn.rsplit("/", 1)[1]
        session = f"s{rng.randrange(10_000)}"
        return (
            {
                "type": "AssumedRole",
                "principalId": f"AROAEXAMPLE{role.upper()}:{session}",
                "arn": f"{arn}/{session}",
                "accountId": ACCOUNT,
                "accessKeyId": "ASIAEXAMPLEKEY",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": f"AROAEXAMPLE{role.upper()}",
                        "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                        "accountId": ACCOUNT,
                        "userName": role,
                    },
                    "attributes": {"creationDate": "2026-11-01T10:00:00Z", "mfaAuthenticated": "false"},
                },
            },
            f"{arn}/*",
        )
    return (
        {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": arn,
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLE",
            "userName": arn.rsplit("/", 1)[1],
        },
        arn,
    )


def _hex(rng: random.Random, n: int = 17) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _authorize(
    rng: random.Random, egress: bool, protocol: str, port: int | None, cidr: str
) -> dict[str, Any]:
    gid = f"sg-{_hex(rng)}"
    perm: dict[str, Any] = {"ipProtocol": protocol, "groups": {}, "ipv6Ranges": {}, "prefixListIds": {}}
    rule: dict[str, Any] = {
        "groupOwnerId": ACCOUNT,
        "groupId": gid,
        "securityGroupRuleId": f"sgr-{_hex(rng)}",
        "isEgress": egress,
        "ipProtocol": protocol,
        "cidrIpv4": cidr,
    }
    if port is not None:
        perm.update(fromPort=port, toPort=port)
        rule.update(fromPort=port, toPort=port)
    else:
        rule.update(fromPort=-1, toPort=-1)
    perm["ipRanges"] = {"items": [{"cidrIp": cidr}]}
    return {
        "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress",
        "requestParameters": {"groupId": gid, "ipPermissions": {"items": [perm]}},
        "responseElements": {
            "requestId": "r",
            "_return": True,
            "securityGroupRuleSet": {"items": [rule]},
        },
    }


def _policy_doc(resource: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": resource}],
        }
    )


def _body(rng: random.Random, kind: str) -> dict[str, Any]:  # noqa: C901 - one branch per kind
    if kind == "noise":
        source, name = rng.choice(NOISE)
        return {
            "eventSource": source,
            "eventName": name,
            "requestParameters": {
                "maxResults": 100,
                "filterSet": {"items": [{"name": "tag:env", "value": "prod"}]},
            },
            "responseElements": None,
            "readOnly": name.startswith(("Describe", "Get", "List")),
        }
    if kind == "failed_authorize":
        body = _authorize(rng, False, "tcp", 22, "0.0.0.0/0")
        body.update(errorCode="Client.UnauthorizedOperation", errorMessage="You are not authorized")
        body["responseElements"] = None
        return body
    if kind == "world_ssh":
        return _authorize(rng, False, "tcp", 22, "0.0.0.0/0")
    if kind == "world_all":
        return _authorize(rng, False, "-1", None, "0.0.0.0/0")
    if kind == "world_https":
        return _authorize(rng, False, "tcp", 443, "0.0.0.0/0")
    if kind == "office_ssh":
        return _authorize(rng, False, "tcp", 22, f"203.0.113.{rng.randrange(256)}/32")
    if kind == "egress_all":
        return _authorize(rng, True, "-1", None, "0.0.0.0/0")
    if kind in ("model_group", "plain_group"):
        tags = [{"key": "perimeter:tier", "value": "model" if kind == "model_group" else "app"}]
        return {
            "eventSource": "ec2.amazonaws.com",
            "eventName": "CreateSecurityGroup",
            "requestParameters": {
                "groupName": f"g-{_hex(rng, 6)}",
                "groupDescription": "serving",
                "vpcId": f"vpc-{_hex(rng)}",
                "tagSpecificationSet": {
                    "items": [{"resourceType": "security-group", "tags": {"items": tags}}]
                },
            },
            "responseElements": {"requestId": "r", "_return": True, "groupId": f"sg-{_hex(rng)}"},
        }
    if kind in ("invoke_star", "invoke_scoped"):
        resource = "*" if kind == "invoke_star" else f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/llm-prod"
        return {
            "eventSource": "iam.amazonaws.com",
            "eventName": "PutRolePolicy",
            "requestParameters": {
                "roleName": f"app-{_hex(rng, 4)}",
                "policyName": "invoke",
                "policyDocument": _policy_doc(resource),
            },
            "responseElements": None,
        }
    if kind in ("model_public", "model_private"):
        req: dict[str, Any] = {
            "modelName": f"m-{_hex(rng, 6)}",
            "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/SageMakerExec",
            "primaryContainer": {"image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tgi:latest"},
        }
        if kind == "model_private":
            req["vpcConfig"] = {"subnets": [f"subnet-{_hex(rng)}"], "securityGroupIds": [f"sg-{_hex(rng)}"]}
            req["enableNetworkIsolation"] = True
        return {
            "eventSource": "sagemaker.amazonaws.com",
            "eventName": "CreateModel",
            "requestParameters": req,
            "responseElements": {
                "modelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{req['modelName']}"
            },
        }
    if kind == "new_vpc":
        return {
            "eventSource": "ec2.amazonaws.com",
            "eventName": "CreateVpc",
            "requestParameters": {"cidrBlock": "10.0.0.0/16"},
            "responseElements": {"vpc": {"vpcId": f"vpc-{_hex(rng)}", "state": "pending"}},
        }
    if kind == "run_instances":
        gid = f"sg-{_hex(rng)}"
        return {
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "requestParameters": {"instanceType": "g5.xlarge", "minCount": 1, "maxCount": 1},
            "responseElements": {
                "instancesSet": {
                    "items": [
                        {
                            "instanceId": f"i-{_hex(rng)}",
                            "groupSet": {"items": [{"groupId": gid, "groupName": "serving"}]},
                            "networkInterfaceSet": {"items": [{"networkInterfaceId": f"eni-{_hex(rng)}"}]},
                        }
                    ]
                }
            },
        }
    raise ValueError(kind)


def records(n: int, seed: int = 12) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``n`` (kind, actor pattern, record) tuples in the mix's proportions."""
    rng = random.Random(seed)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        identity, pattern = _actor(rng, kind)
        record = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}Z",
            "awsRegion": REGION,
            "sourceIPAddress": f"198.51.100.{i % 256}",
            "userAgent": "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux api/ec2#1.170.0",
            **_body(rng, kind),
            "requestID": f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
            "eventID": f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
            "readOnly": kind == "noise",
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"ec2.{REGION}.amazonaws.com",
            },
        }
        yield kind, pattern, record


def write_history(root: Path, n: int, *, per_file: int = 5_000, seed: int = 12, level: int = 1) -> Written:
    """Write ``n`` records under ``root`` as a trail would, ``per_file`` records a file."""
    out = Written()
    base = root / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION / "2026" / "11"
    stream = records(n, seed)
    while out.records < n:
        day = base / f"{1 + out.files % 28:02d}"
        day.mkdir(parents=True, exist_ok=True)
        name = f"{ACCOUNT}_CloudTrail_{REGION}_20261101T{out.files:06d}Z_{seed:04x}.json.gz"
        with gzip.open(day / name, "wb", compresslevel=level) as fh:
            fh.write(b'{"Records":[')
            for j, (kind, pattern, record) in enumerate(itertools.islice(stream, per_file)):
                fh.write((b"," if j else b"") + json.dumps(record, separators=(",", ":")).encode())
                _count(out, kind, pattern)
            fh.write(b"]}")
        out.files += 1
    return out


def _count(out: Written, kind: str, pattern: str) -> None:
    out.records += 1
    out.kinds[kind] += 1
    violated, remediated = EXPECTED.get(kind, (frozenset(), frozenset()))
    for control in violated:
        out.events[control] += 1
    for control in remediated:
        out.remediate[control] += 1
        out.remediate_by_actor[pattern] += 1
