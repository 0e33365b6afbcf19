"""The AWS actions each function's code calls: the contract between code and template.

``tests/integration/test_least_privilege.py`` holds both sides to it: the template's role for
each function grants exactly these actions (no more), and running every sample event through
the function under moto, with every AWS call recorded, calls nothing outside them. A new
adapter call means a line here and a line in ``template.yaml``, or the test fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Idempotency (perimeter.core.once): put (claim, alone or in a TransactWriteItems with the write-ahead
# audit record, which IAM authorizes as PutItem per item; the completion, the whole record again),
# get (duplicate), delete (release after a failure).
IDEMPOTENCY = frozenset({"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"})
REPORTING = frozenset({"securityhub:BatchImportFindings", "sns:Publish"})
AUDIT = frozenset({"dynamodb:PutItem", "dynamodb:GetItem"})
POLICY = frozenset({"ssm:GetParameter"})

FUNCTIONS: dict[str, frozenset[str]] = {
    "SgGuardFunction": frozenset(
        {
            # DescribeVpcs: a group named by groupName is the default VPC's (issue 9).
            "ec2:DescribeVpcs",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeRouteTables",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            # exposure is the union: customer prefix lists' entries (issue 8)
            "ec2:DescribeManagedPrefixLists",
            "ec2:GetManagedPrefixListEntries",
            # the findings ledger (CreatedAt/FirstObservedAt kept)
            "dynamodb:UpdateItem",
            # the undo's exemptions of the groups judged (issue 11): checked absent in the
            # claim's TransactWriteItems (a ConditionCheck per key), read when one is there
            "dynamodb:ConditionCheckItem",
            "dynamodb:Query",
        }
    )
    | IDEMPOTENCY
    | REPORTING
    | AUDIT
    | POLICY,
    "DefaultSgGuardFunction": frozenset(
        {
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeRouteTables",
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:ModifyNetworkInterfaceAttribute",
            # ModifyVpcEndpoint names the endpoint: its ENIs are read (issue 9)
            "ec2:DescribeVpcEndpoints",
            # launch templates (issue 9): the versions launches use, and their stored findings
            "ec2:DescribeLaunchTemplateVersions",
            "securityhub:GetFindings",
            # the undo's exemptions of the default group (issue 11)
            "dynamodb:Query",
        }
    )
    | IDEMPOTENCY
    | REPORTING
    | AUDIT
    | POLICY,
}

# Issue 4 (model posture). PER-FL-1's creation: CreateFlowLogs passing the stack's delivery
# role, the log group made sure of with explicit retention; the S3 destination needs the
# log-delivery actions (authorization only, no API call of their own).
FLOW_LOG_CREATE = frozenset(
    {
        "ec2:DescribeFlowLogs",
        "ec2:CreateFlowLogs",
        "iam:PassRole",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
    }
)
#: Reading the stored findings of the judged resources, to resolve those no longer true.
FINDINGS_READ = frozenset({"securityhub:GetFindings"})
FUNCTIONS["ModelPostureFunction"] = (
    frozenset(
        {
            "sagemaker:ListEndpoints",
            "sagemaker:DescribeModel",
            "sagemaker:DescribeEndpointConfig",
            "sagemaker:DescribeEndpoint",
            "sagemaker:DescribeNotebookInstance",
            # Studio domains' AppNetworkAccessType (issue 9)
            "sagemaker:DescribeDomain",
            "bedrock:GetGuardrail",
            "bedrock:ListGuardrails",
            "bedrock:ListEnforcedGuardrailsConfiguration",
            "bedrock:ListMarketplaceModelEndpoints",
            "bedrock:ListImportedModels",
            "bedrock:ListCustomModelDeployments",
            "bedrock:GetMarketplaceModelEndpoint",
            # a Bedrock resource policy judged whole (PutResourcePolicy, DeleteResourcePolicy)
            "bedrock:GetResourcePolicy",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeNetworkInterfaces",
        }
    )
    | FLOW_LOG_CREATE
    | IDEMPOTENCY
    | REPORTING
    | FINDINGS_READ
    | AUDIT
    | POLICY
)
# Detect only: IamGuard never writes, so no audit table.
FUNCTIONS["IamGuardFunction"] = (
    frozenset(
        {
            "iam:GetRole",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:ListAttachedRolePolicies",
            "iam:GetUser",
            "iam:ListUserPolicies",
            "iam:GetUserPolicy",
            "iam:ListAttachedUserPolicies",
            # a user holds its groups' policies; a group's grant reaches every member
            "iam:ListGroupsForUser",
            "iam:GetGroup",
            "iam:ListGroupPolicies",
            "iam:GetGroupPolicy",
            "iam:ListAttachedGroupPolicies",
            "iam:GetPolicy",
            "iam:GetPolicyVersion",
            "iam:ListEntitiesForPolicy",
        }
    )
    | IDEMPOTENCY
    | REPORTING
    | FINDINGS_READ
    | POLICY
)
FUNCTIONS["FlowLogGuardFunction"] = (
    frozenset({"ec2:DescribeVpcs", "ec2:DescribeSecurityGroups"})
    | FLOW_LOG_CREATE
    | IDEMPOTENCY
    | REPORTING
    | FINDINGS_READ
    | AUDIT
    | POLICY
)
# Issue 9 (PER-NET-1): the VPC's network read whole, detect only. No EC2 write, so no audit
# table; findings read by id to resolve, and by listing for DisassociateAddress (the address's
# old path is known only from the finding that named it).
FUNCTIONS["NetGuardFunction"] = (
    frozenset(
        {
            "ec2:DescribeInternetGateways",
            "ec2:DescribeRouteTables",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeSubnets",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
        }
    )
    | IDEMPOTENCY
    | REPORTING
    | FINDINGS_READ
    | POLICY
)
# Issue 8 (the sweep): region-wide listings, the event path's own actions for what it
# remediates (revoke, default-SG migration, flow logs), deleting unused groups (PER-REV-1),
# reading and resolving findings, the review state. No idempotency table: every step of a
# sweep is safe to repeat.
FUNCTIONS["SweepFunction"] = (
    frozenset(
        {
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeVpcs",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeVpcPeeringConnections",
            "ec2:DescribeStaleSecurityGroups",
            "ec2:DescribeLaunchTemplateVersions",
            # the union rule: customer prefix lists named by the region's rules
            "ec2:DescribeManagedPrefixLists",
            "ec2:GetManagedPrefixListEntries",
            # PER-NET-1 (issue 9): gateways region-wide, the ACLs of VPCs that have one
            "ec2:DescribeInternetGateways",
            "ec2:DescribeNetworkAcls",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:DeleteSecurityGroup",
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:ModifyNetworkInterfaceAttribute",
            "sagemaker:ListModels",
            "sagemaker:DescribeModel",
            "sagemaker:ListNotebookInstances",
            "sagemaker:DescribeNotebookInstance",
            # Bedrock Marketplace endpoints (PER-VPC-1), as ModelPosture judges them
            "bedrock:ListMarketplaceModelEndpoints",
            "bedrock:GetMarketplaceModelEndpoint",
            # PER-IAM-1: every principal in one paginated read; AWS managed policies' text
            "iam:GetAccountAuthorizationDetails",
            "iam:GetPolicy",
            "iam:GetPolicyVersion",
            "securityhub:GetFindings",
            "dynamodb:BatchWriteItem",
            "dynamodb:Scan",
            # (dynamodb:Scan also reads the undo's exemptions, whole, beside the listing)
            # the findings ledger: changed items put (PutItem, in a TransactWriteItems) on the
            # condition that no event changed them since the Scan; one an event changed gets
            # the first times it lacks (UpdateItem, if_not_exists)
            "dynamodb:UpdateItem",
        }
    )
    | FLOW_LOG_CREATE
    | REPORTING
    | AUDIT
    | POLICY
)

# Issue 11: the Security Hub custom action "Perimeter undo". The restore (perimeter.restore) of
# the three remediations it undoes (revoked rules, a default-SG migration, a PER-REV-1 group
# deletion: the group recreated with its tags, its default egress rule revoked when the deleted
# group had none, found by name on a retry), the exemption it writes first, the audit record marked
# restored (conditional UpdateItem), the finding's note. No idempotency table: the audit
# record's restored mark makes a repeated undo a no-op, and every restore step tolerates
# having been done.
FUNCTIONS["UndoFunction"] = frozenset(
    {
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteSecurityGroup",
        "ec2:CreateSecurityGroup",
        "ec2:CreateTags",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:DescribeSecurityGroups",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "securityhub:BatchUpdateFindings",
    }
)


# DynamoDB authorizes each item of a TransactWriteItems by the item's own action ("Using IAM
# with DynamoDB transactions"): there is no action named after the transaction itself.
_TRANSACT_ITEM_ACTION = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def actions_of_call(prefix: str, operation: str, params: Mapping[str, Any]) -> set[str]:
    """The IAM actions one API call needs (``prefix`` is the service's signing name)."""
    if prefix == "dynamodb" and operation == "TransactWriteItems":
        kinds = {kind for item in params.get("TransactItems", []) for kind in item}
        return {f"dynamodb:{_TRANSACT_ITEM_ACTION[k]}" for k in kinds}
    return {f"{prefix}:{operation}"}


# Organization mode (issue 12). What each function's role gains in the security account when
# the stack's Mode is organization (template.yaml grants these only under IsOrganization):
# assuming the member role, and reading the organization's tree for the policy's OU overrides.
# The sweep also lists the organization's accounts and invokes itself once per (account, region).
ORG_COMMON = frozenset({"sts:AssumeRole", "organizations:ListParents"})
#: The functions that act where an event happened (a member account in organization mode).
#: UndoFunction is not one: it answers the security account's own Security Hub action, on the
#: audit records of that account (a member's remediation is put back with `perimeter restore
#: AUDIT_ID --member-role ...`).
MEMBER_ACTING = frozenset(name for name in FUNCTIONS if name != "UndoFunction")
ORGANIZATION: dict[str, frozenset[str]] = {name: ORG_COMMON for name in MEMBER_ACTING}
ORGANIZATION["SweepFunction"] = ORG_COMMON | {"organizations:ListAccounts", "lambda:InvokeFunction"}

#: Services whose calls stay in the security account (``perimeter.core.accounts.HOME_SERVICES``):
#: Perimeter's tables, topic and policy parameter. Everything else a function calls is made in
#: the member account, through the member role.
HOME_PREFIXES = frozenset({"dynamodb", "sns", "ssm"})


def member_role_actions() -> frozenset[str]:
    """The member stack's remediation role (member.yaml): the union of what the functions call
    in an account, nothing of Perimeter's own stores. ``tests/integration/test_member_stack.py``
    holds member.yaml to it."""
    return frozenset(
        a
        for name, acts in FUNCTIONS.items()
        if name in MEMBER_ACTING
        for a in acts
        if a.split(":", 1)[0] not in HOME_PREFIXES
    )
