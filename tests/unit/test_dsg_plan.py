"""The pure half of the default-SG work: what events point at, the interim rules, the plan."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from perimeter.core.events import MalformedEvent, parse_event
from perimeter.core.rules import Rule
from perimeter.default_groups.plan import (
    INTERIM_PREFIX,
    SELF,
    DefaultGroup,
    Eni,
    ManagedResource,
    Move,
    extract_subjects,
    fix_for_eni,
    fix_for_managed,
    interim_name,
    interim_rules,
    materialize,
    plan_migration,
    tier_findings,
)
from perimeter.policy import PolicyError, load_default_policy, parse_policy
from perimeter.security_groups.context import GroupContext

DSG = "sg-0def"
VPC = "vpc-1"
POLICY = load_default_policy()
CTX = GroupContext(
    group_id=SELF, account="123456789012", region="us-east-1", vpc_id=VPC, vpc_cidrs=("10.0.0.0/16",)
)


def call(
    name: str, request: dict | None = None, response: dict | None = None, source: str = "ec2.amazonaws.com"
):
    return parse_event(
        {
            "eventName": name,
            "eventSource": source,
            "awsRegion": "us-east-1",
            "recipientAccountId": "123456789012",
            "requestParameters": request,
            "responseElements": response,
        }
    )


# --- extract_subjects ------------------------------------------------------------------


def test_run_instances_takes_enis_from_the_response() -> None:
    s = extract_subjects(
        call(
            "RunInstances",
            {},
            {
                "instancesSet": {
                    "items": [
                        {
                            "instanceId": "i-1",
                            "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-1"}]},
                        },
                        {
                            "instanceId": "i-2",
                            "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-2"}]},
                        },
                    ]
                }
            },
        )
    )
    assert (s.kind, s.eni_ids, s.instance_ids) == ("enis", ("eni-1", "eni-2"), ("i-1", "i-2"))


@pytest.mark.parametrize(
    ("name", "request_", "response", "kind", "reason"),
    [
        ("RunInstances", {}, {"instancesSet": {}}, "none", "RunInstances record names no instance"),
        (
            "ModifyNetworkInterfaceAttribute",
            {"networkInterfaceId": "eni-1", "sourceDestCheck": {"value": False}},
            None,
            "none",
            "not a security-group change",
        ),
        (
            "ModifyNetworkInterfaceAttribute",
            {"networkInterfaceId": "eni-1", "groupSet": {"items": [{"groupId": "sg-1"}]}},
            None,
            "enis",
            "",
        ),
        (
            "ModifyInstanceAttribute",
            {"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"},
            None,
            "none",
            "not a security-group change",
        ),
        (
            "ModifyInstanceAttribute",
            {"instanceId": "i-1", "groupSet": {"items": [{"groupId": "sg-1"}]}},
            None,
            "enis",
            "",
        ),
        ("AuthorizeSecurityGroupIngress", {"groupId": "sg-1"}, None, "group", ""),
        (
            "AuthorizeSecurityGroupEgress",
            {"groupName": "web"},
            None,
            "none",
            "request names the group by name only (EC2-Classic)",
        ),
        (
            "CreateNetworkInterface",
            {"groupSet": {}},
            {"networkInterface": {"networkInterfaceId": "eni-9"}},
            "enis",
            "",
        ),
    ],
)
def test_extract_table(name: str, request_: dict, response: dict | None, kind: str, reason: str) -> None:
    s = extract_subjects(call(name, request_, response))
    assert s.kind == kind and s.reason == reason


def test_modify_eni_wrapped_request_form() -> None:
    req = {
        "ModifyNetworkInterfaceAttributeRequest": {
            "NetworkInterfaceId": {"tag": 1, "content": "eni-7"},
            "SecurityGroupId": {"tag": 1, "content": "sg-1"},
        }
    }
    assert extract_subjects(call("ModifyNetworkInterfaceAttribute", req)).eni_ids == ("eni-7",)


@pytest.mark.parametrize(
    ("name", "request_"),
    [
        ("CreateNetworkInterface", {}),
        ("ModifyNetworkInterfaceAttribute", {"groupSet": {}}),
        ("ModifyInstanceAttribute", {"groupSet": {}}),
        ("DeleteVpc", {}),
    ],
)
def test_malformed(name: str, request_: dict) -> None:
    with pytest.raises(MalformedEvent):
        extract_subjects(call(name, request_, {}))


def test_managed_resources() -> None:
    model = extract_subjects(
        call(
            "CreateModel",
            {"modelName": "m", "vpcConfig": {"securityGroupIds": ["sg-1"], "subnets": ["subnet-1"]}},
            {"modelArn": "arn:m"},
            "sagemaker.amazonaws.com",
        )
    )
    assert model.kind == "managed" and model.managed == ManagedResource(
        "AwsSageMakerModel", "m", "arn:m", ("sg-1",), ("subnet-1",)
    )
    nb = extract_subjects(
        call(
            "CreateNotebookInstance",
            {"notebookInstanceName": "n", "subnetId": "subnet-1"},
            {},
            "sagemaker.amazonaws.com",
        )
    )
    assert nb.kind == "managed" and nb.group_ids == () and "default group applies" in nb.reason
    none = extract_subjects(call("CreateModel", {"modelName": "m"}, {}, "sagemaker.amazonaws.com"))
    assert none.kind == "none"
    mp = extract_subjects(
        call(
            "CreateMarketplaceModelEndpoint",
            {
                "endpointName": "e",
                "endpointConfig": {"sageMaker": {"vpc": {"securityGroupIds": ["sg-2"], "subnetIds": ["s"]}}},
            },
            {"marketplaceModelEndpoint": {"endpointArn": "arn:e"}},
            "bedrock.amazonaws.com",
        )
    )
    assert mp.managed and mp.managed.arn == "arn:e" and mp.group_ids == ("sg-2",)


# --- interim rules ---------------------------------------------------------------------

SELF_REF = Rule(DSG, False, "-1", None, None, referenced_group_id=DSG, rule_id="sgr-1")
EGRESS_ALL = Rule(DSG, True, "-1", None, None, cidr="0.0.0.0/0", rule_id="sgr-2")
WORLD_SSH = Rule(DSG, False, "tcp", 22, 22, cidr="0.0.0.0/0", rule_id="sgr-3")
VPC_PG = Rule(DSG, False, "tcp", 5432, 5432, cidr="10.0.0.0/16", rule_id="sgr-4")
WORLD_V6_ALL = Rule(DSG, False, "-1", None, None, cidr="::/0", ipv6=True, rule_id="sgr-5")
FROM_APP = Rule(DSG, False, "tcp", 8080, 8080, referenced_group_id="sg-app", rule_id="sgr-6")


def test_self_references_point_at_the_interim_group_and_forbidden_rules_are_dropped() -> None:
    default = DefaultGroup(DSG, VPC, (SELF_REF, EGRESS_ALL, WORLD_SSH, VPC_PG, WORLD_V6_ALL, FROM_APP))
    kept, dropped = interim_rules(default, POLICY, CTX)
    assert {r.describe() for r in kept} == {
        f"all traffic from {SELF}",
        "all traffic to 0.0.0.0/0",
        "tcp/5432 from 10.0.0.0/16",
        "tcp/8080 from sg-app",
    }
    assert all(r.group_id == SELF and r.rule_id is None for r in kept)
    reasons = {r.describe(): set(c) for r, c in dropped}
    assert reasons["tcp/22 from 0.0.0.0/0"] >= {"PER-SG-1", "PER-SG-2"}
    assert reasons["all traffic from ::/0"] >= {"PER-SG-1", "PER-SG-3"}
    bound = materialize(next(r for r in kept if r.referenced_group_id == SELF), "sg-interim")
    assert (bound.group_id, bound.referenced_group_id) == ("sg-interim", "sg-interim")


def test_a_control_turned_off_does_not_drop() -> None:
    doc = dict(POLICY.raw)
    doc["controls"] = {**doc["controls"], "PER-SG-1": {"mode": "off"}, "PER-SG-2": {"mode": "off"}}
    kept, dropped = interim_rules(DefaultGroup(DSG, VPC, (WORLD_SSH,)), parse_policy(doc), CTX)
    assert [r.describe() for r in kept] == ["tcp/22 from 0.0.0.0/0"] and dropped == ()


def test_interim_name_is_a_digest_of_the_rules() -> None:
    a, _ = interim_rules(DefaultGroup(DSG, VPC, (SELF_REF, EGRESS_ALL)), POLICY, CTX)
    b, _ = interim_rules(
        DefaultGroup(
            "sg-other",
            VPC,
            (replace(EGRESS_ALL, rule_id="x"), replace(SELF_REF, referenced_group_id="sg-other")),
        ),
        POLICY,
        CTX,
    )
    c, _ = interim_rules(DefaultGroup(DSG, VPC, (SELF_REF,)), POLICY, CTX)
    assert interim_name(a) == interim_name(b) != interim_name(c)
    assert interim_name(a).startswith(INTERIM_PREFIX) and len(interim_name(a)) <= 255


# --- plan ------------------------------------------------------------------------------


def eni(eid: str, *groups: tuple[str, str], **kw) -> Eni:
    return Eni(eid, VPC, groups or ((DSG, "default"),), **kw)


def with_modes(**modes: str):
    doc = dict(POLICY.raw)
    doc["controls"] = {**doc["controls"], **{k.replace("_", "-"): {"mode": v} for k, v in modes.items()}}
    return parse_policy(doc)


def test_plan_moves_everyone_then_revokes() -> None:
    default = DefaultGroup(DSG, VPC, (SELF_REF, EGRESS_ALL, WORLD_SSH))
    deps = [eni("eni-1"), eni("eni-2", ("sg-app", "app"), (DSG, "default")), eni("eni-3", ("sg-app", "app"))]
    plan = plan_migration(default, deps, POLICY, CTX)
    assert [m.eni_id for m in plan.moves] == ["eni-1", "eni-2"], "eni-3 is not a dependant"
    assert plan.revoke == default.rules and plan.why_not == ()
    assert plan.dsg1_violated and plan.dsg2_violated and plan.acts


def test_one_unmovable_dependant_blocks_everything() -> None:
    default = DefaultGroup(DSG, VPC, (SELF_REF,))
    deps = [
        eni("eni-1"),
        eni("eni-2", requester_managed=True, description="VPC Endpoint Interface vpce-0abc123"),
    ]
    plan = plan_migration(default, deps, POLICY, CTX)
    assert plan.moves == () and plan.revoke == () and not plan.acts
    assert plan.blockers[0].fix.startswith("aws ec2 modify-vpc-endpoint --vpc-endpoint-id vpce-0abc123")
    assert "cannot be moved" in plan.why_not[0]


def test_a_rule_elsewhere_naming_the_default_group_blocks_the_move() -> None:
    """sg-db admits 5432 from the default group: moving its members to the interim group would
    cut that traffic, so nothing moves and the default group's rules stay."""
    default = DefaultGroup(DSG, VPC, (SELF_REF, WORLD_SSH))
    from_default = Rule("sg-db", False, "tcp", 5432, 5432, referenced_group_id=DSG, rule_id="sgr-db")
    plan = plan_migration(default, [eni("eni-1")], POLICY, CTX, referenced_by=[from_default])
    assert plan.moves == () and plan.revoke == () and not plan.acts
    assert any("sg-db: tcp/5432 from " + DSG in why for why in plan.why_not), plan.why_not
    without_deps = plan_migration(default, [], POLICY, CTX, referenced_by=[from_default])
    assert without_deps.revoke == default.rules, "with no member to cut off, the rules still go"


@pytest.mark.parametrize(
    ("modes", "moves", "revokes", "why"),
    [
        ({"PER_DSG_1": "detect"}, True, False, "PER-DSG-1 mode is detect"),
        ({"PER_DSG_2": "detect"}, False, False, "PER-DSG-2 mode is detect"),
        ({"PER_DSG_1": "detect", "PER_DSG_2": "detect"}, False, False, "PER-DSG-2 mode is detect"),
        ({"PER_DSG_2": "off"}, False, False, "PER-DSG-2 mode is off"),
    ],
)
def test_modes(modes: dict, moves: bool, revokes: bool, why: str) -> None:
    plan = plan_migration(DefaultGroup(DSG, VPC, (SELF_REF,)), [eni("eni-1")], with_modes(**modes), CTX)
    assert bool(plan.moves) == moves and bool(plan.revoke) == revokes and why in plan.why_not


def test_no_dependants_revokes_directly_and_dry_run_never_acts() -> None:
    plan = plan_migration(DefaultGroup(DSG, VPC, (WORLD_SSH,)), [], POLICY, CTX)
    assert plan.revoke == (WORLD_SSH,) and plan.moves == () and not plan.dsg2_violated
    dry = plan_migration(DefaultGroup(DSG, VPC, (WORLD_SSH,)), [eni("eni-1")], POLICY.with_dry_run(True), CTX)
    assert not dry.acts and dry.violating


def test_exemptions_stop_acting() -> None:
    plan = plan_migration(
        DefaultGroup(DSG, VPC, (SELF_REF,)),
        [eni("eni-1")],
        POLICY,
        CTX,
        exempt_dsg2="vpc-1 until 2030-01-01: legacy",
    )
    assert not plan.acts and any("exempt" in w for w in plan.why_not)


def test_quarantine_by_tag_when_enabled() -> None:
    doc = dict(POLICY.raw)
    doc["default_sg"] = {"quarantine": {"enabled": True, "tag": {"key": "quarantine"}}}
    plan = plan_migration(
        DefaultGroup(DSG, VPC, ()),
        [eni("eni-1", tags={"quarantine": "yes"}), eni("eni-2")],
        parse_policy(doc),
        CTX,
    )
    assert [(m.eni_id, m.target) for m in plan.moves] == [("eni-1", "quarantine"), ("eni-2", "interim")]
    off = plan_migration(
        DefaultGroup(DSG, VPC, ()), [eni("eni-1", tags={"perimeter:quarantine": "true"})], POLICY, CTX
    )
    assert off.moves[0].target == "interim"


group_ids = st.lists(st.sampled_from(["sg-a", "sg-b", DSG, "sg-c"]), min_size=1, max_size=4, unique=True)


@given(before=group_ids.filter(lambda g: DSG in g), target=st.sampled_from(["sg-t", "sg-a"]))
def test_a_move_never_leaves_an_eni_without_a_group(before: list[str], target: str) -> None:
    added, final = Move("eni-1", None, tuple(before), "interim").with_target(target, DSG)
    assert added and final and target in added and target in final and DSG not in final
    assert set(before) <= set(added) and set(final) == set(added) - {DSG}


# --- fixes and tiers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "expect"),
    [
        (
            {"description": "EFS mount target for fs-1 (fsmt-0123abcd)"},
            "aws efs modify-mount-target-security-groups --mount-target-id fsmt-0123abcd",
        ),
        (
            {"interface_type": "lambda", "description": "AWS Lambda VPC ENI-score-model-0a1b2c3d-1111-2222"},
            "aws lambda update-function-configuration --function-name score-model",
        ),
        ({"description": "RDSNetworkInterface"}, "aws rds modify-db-instance"),
        (
            {"description": "ELB app/web/0123"},
            "aws elbv2 set-security-groups --load-balancer-arn <arn of app/web/0123>",
        ),
        ({"requester_id": "amazon-elasticache"}, "is managed by amazon-elasticache"),
    ],
)
def test_fix_for_eni(kw: dict, expect: str) -> None:
    assert expect in fix_for_eni(eni("eni-9", requester_managed=True, **kw), DSG, "perimeter-interim-x")


def test_fix_for_managed_names_the_resource() -> None:
    res = ManagedResource("AwsSageMakerModel", "m1", "arn:m1", (DSG, "sg-model"), ("subnet-1",))
    text = fix_for_managed(res, [DSG])
    assert "SecurityGroupIds=sg-model,Subnets=subnet-1" in text and "delete-model --model-name m1" in text


def test_tier_findings() -> None:
    tags = {
        "sg-m": {"perimeter:tier": "model"},
        "sg-d": {"perimeter:tier": "db"},
        "sg-a": {"perimeter:tier": "app"},
    }
    enis = [
        eni("eni-1", ("sg-m", "m"), ("sg-d", "d")),
        eni("eni-2", ("sg-m", "m"), description="RDSNetworkInterface"),
        eni("eni-3", ("sg-m", "m")),
        eni("eni-4", ("sg-a", "a"), ("sg-d", "d")),
    ]
    found = {t.eni.eni_id: t.other for t in tier_findings(enis, tags, POLICY)}
    assert found == {"eni-1": (("sg-d", "database"),), "eni-2": (("ENI description", "database"),)}


# --- policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"quarantine": {"enabled": "yes"}}, "default_sg.quarantine.enabled"),
        ({"quarantine": {"tag": {"key": ""}}}, "default_sg.quarantine.tag.key"),
        ({"quarantine": {"colour": 1}}, "default_sg.quarantine.colour"),
        ({"interim": {}}, "default_sg.interim"),
    ],
)
def test_policy_errors_name_the_path(section: dict, path: str) -> None:
    doc = {**POLICY.raw, "default_sg": section}
    with pytest.raises(PolicyError, match=f"^{path.replace('.', '[.]')}"):
        parse_policy(doc)


def test_shipped_policy_enforces_both_default_sg_controls() -> None:
    assert POLICY.mode("PER-DSG-1") == POLICY.mode("PER-DSG-2") == "enforce"
    assert POLICY.mode("PER-TIER-1") == POLICY.mode("PER-SG-5") == "detect"
