"""The AWS actions each function's code calls: the contract between code and template.

``tests/integration/test_least_privilege.py`` holds both sides to it: the template's role for
each function grants exactly these actions (no more), and running every sample event through
the function under moto, with every AWS call recorded, calls nothing outside them. A new
adapter call means a line here and a line in ``template.yaml``, or the test fails.
"""

from __future__ import annotations

# Powertools idempotency: put (claim), get (duplicate), update (complete), delete (failure).
IDEMPOTENCY = frozenset(
    {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
)
REPORTING = frozenset({"securityhub:BatchImportFindings", "sns:Publish"})
AUDIT = frozenset({"dynamodb:PutItem", "dynamodb:GetItem"})
POLICY = frozenset({"ssm:GetParameter"})

FUNCTIONS: dict[str, frozenset[str]] = {
    "SgGuardFunction": frozenset(
        {
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeRouteTables",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
        }
    )
    | IDEMPOTENCY
    | REPORTING
    | AUDIT
    | POLICY,
}
