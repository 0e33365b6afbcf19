"""The pure judgements behind the issue 9 doors, as tables: launch-template versions, enforced
guardrail configurations, Bedrock resource policies, model-execution-role trust, Studio domains."""

from __future__ import annotations

import pytest
from perimeter.core.events import MalformedEvent, parse_event
from perimeter.iam.evaluate import Principal, resource_policy_issue, trust_issue
from perimeter.model_posture.evaluate import domain_issue
from perimeter.model_posture.guardrails import Enforcement, Guardrail, enforcement_issue
from perimeter.security_groups.launch_template import (
    TemplateVersion,
    template_issues,
    template_ref,
    version_from_api,
)

DSG, MODEL, APP = "sg-d", "sg-m", "sg-a"


def _v(groups: tuple[str, ...] = (), names: tuple[str, ...] = (), public: bool = False) -> TemplateVersion:
    return TemplateVersion("lt-1", "t", 2, True, groups, names, public)


@pytest.mark.parametrize(
    ("version", "controls"),
    [
        (_v((APP,)), []),
        (_v((DSG,)), ["PER-DSG-2"]),
        (_v(names=("default",)), ["PER-DSG-2"]),
        (_v((MODEL,), public=True), ["PER-VPC-1"]),
        (_v((APP,), public=True), []),
        (_v((MODEL, DSG), public=True), ["PER-DSG-2", "PER-VPC-1"]),
    ],
)
def test_template_versions(version: TemplateVersion, controls: list[str]) -> None:
    got = template_issues(
        [version], defaults=frozenset({DSG}), model_groups=frozenset({MODEL}), region="us-east-1", account="1"
    )
    assert [i.control_id for i in got] == controls


def test_version_from_api_reads_interface_groups_and_public_ip() -> None:
    v = version_from_api(
        {
            "LaunchTemplateId": "lt-1",
            "LaunchTemplateName": "t",
            "VersionNumber": 3,
            "DefaultVersion": False,
            "LaunchTemplateData": {
                "SecurityGroupIds": [APP],
                "NetworkInterfaces": [{"Groups": [MODEL, APP], "AssociatePublicIpAddress": True}],
            },
        }
    )
    assert v.group_ids == (APP, MODEL) and v.public_ip and v.label == "version 3"


def test_a_record_naming_no_template_is_malformed() -> None:
    detail = {
        "eventVersion": "1.09",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "ModifyLaunchTemplate",
        "awsRegion": "us-east-1",
        "eventID": "e",
        "recipientAccountId": "1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/u", "accountId": "1"},
        "requestParameters": {"ModifyLaunchTemplateRequest": {"SetDefaultVersion": "2"}},
        "responseElements": None,
    }
    with pytest.raises(MalformedEvent, match="names no launch template"):
        template_ref(parse_event({"detail-type": "AWS API Call via CloudTrail", "detail": detail}))


def _gr(strength: str) -> Guardrail:
    return Guardrail("g", "arn:g", "g", "1", {"PROMPT_ATTACK": (strength, "NONE")})


ENF = Enforcement("g", "1", "ACCOUNT", "cfg-1")


@pytest.mark.parametrize(
    ("applied", "served", "deleted", "issue"),
    [
        ([(ENF, _gr("HIGH"))], ["m"], None, False),
        ([(ENF, _gr("LOW"))], ["m"], None, True),
        ([(ENF, None)], ["m"], None, True),  # the named version no longer exists
        ([(ENF, _gr("LOW"))], [], None, False),  # nothing served
        ([], ["m"], "cfg-1", True),
        ([], ["m"], None, False),
        ([(ENF, _gr("HIGH"))], ["m"], "cfg-2", False),  # another one still applies a strong guardrail
    ],
)
def test_enforcement(applied: list, served: list[str], deleted: str | None, issue: bool) -> None:
    got = enforcement_issue(account="1", region="r", applied=applied, served=served, deleted=deleted)
    assert (got is not None) is issue


ANYONE = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "bedrock:InvokeModel", "Resource": "*"}


@pytest.mark.parametrize(
    ("statement", "score"),
    [
        (ANYONE, 85),
        ({**ANYONE, "Principal": "*", "Action": "bedrock:GetCustomModel"}, 65),
        ({**ANYONE, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}, None),
        ({**ANYONE, "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}, None),
        ({**ANYONE, "Effect": "Deny"}, None),
    ],
)
def test_resource_policy(statement: dict, score: int | None) -> None:
    got = resource_policy_issue({"Statement": [statement]}, "arn:aws:bedrock:r:1:custom-model/x")
    assert (got.score if got else None) == score


SERVICE = {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}


@pytest.mark.parametrize(
    ("statements", "flagged"),
    [
        ([SERVICE], False),
        ([SERVICE, {**SERVICE, "Principal": {"AWS": "*"}}], True),
        ([SERVICE, {**SERVICE, "Principal": "*"}], True),
        (
            [SERVICE, {**SERVICE, "Principal": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}],
            False,
        ),
        # not a model execution role: the invoke checks judge what it may do instead
        ([{**SERVICE, "Principal": {"AWS": "*"}}], False),
    ],
)
def test_trust(statements: list, flagged: bool) -> None:
    role = Principal("role", "r", "arn:aws:iam::1:role/r", {"Statement": statements})
    assert (trust_issue(role) is not None) is flagged


@pytest.mark.parametrize(("access", "flagged"), [("PublicInternetOnly", True), ("VpcOnly", False)])
def test_domain(access: str, flagged: bool) -> None:
    assert (domain_issue("arn", "d-1", "n", access, ()) is not None) is flagged
