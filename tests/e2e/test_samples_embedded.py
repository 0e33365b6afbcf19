"""Every sample in ``events/``, run as the README says: ``perimeter invoke -e <sample> --embedded``.

The command builds the sample's resources in a fresh moto account (as the sample's call left
them), routes the event through the template's rules and runs the handlers; it then reads the
account back through the API (``after``). Each sample must end in the outcome its file name
promises, judged on that read-back, not only on the handlers' own summaries.

moto 5.2.5 lacks Bedrock guardrails, Custom Model Import and Marketplace endpoints, SageMaker's
UpdateDomain, and the DescribeSecurityGroups filter ``ip-permission.prefix-list-id`` (FACTS.md).
The embedded server carries the runner's extensions for them (local/perimeter_local/moto_ext.py:
the filter, UpdateDomain on moto's domain, and a Bedrock stand-in whose answers are validated
against botocore's model); the output must name them whenever they served a call.
tests/integration/test_model_bedrock.py, test_model_bedrock_doors.py and test_model_domains.py run the
samples through the handler with botocore Stubber too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from perimeter_local import invoke as local_invoke
from perimeter_local.cli import EXIT_UNSUPPORTED
from perimeter_local.cli import main as cli_main
from perimeter_local.stage import UNSUPPORTED, stage

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

SG, DSG, MODEL, IAM, FLOW, NET = (
    "SgGuardFunction",
    "DefaultSgGuardFunction",
    "ModelPostureFunction",
    "IamGuardFunction",
    "FlowLogGuardFunction",
    "NetGuardFunction",
)
#: PER-NET-1: each opening call completes the path to a model server's ENI (its finding FAILED)
NET_OPENS = {
    "AttachInternetGateway--model-vpc",
    "CreateRoute--default-route-to-igw",
    "ReplaceRoute--default-route-to-igw",
    "AssociateRouteTable--public-table",
    "ReplaceRouteTableAssociation--public-table",
    "ReplaceNetworkAclAssociation--open-acl",
    "ModifySubnetAttribute--map-public-ip",
    "CreateNetworkAclEntry--allow-world-8080",
    "ReplaceNetworkAclEntry--deny-to-allow",
    "AssociateAddress--eip-on-model-eni",
}
#: ... and each closing call follows the opening one (judged first, finding active), resolving it
NET_CLOSES = {
    "DetachInternetGateway--model-vpc": "AttachInternetGateway",
    "DeleteRoute--default-route": "CreateRoute",
    "DisassociateRouteTable--public-table": "AssociateRouteTable",
    "DeleteNetworkAclEntry--allow-removed": "CreateNetworkAclEntry",
    "DisassociateAddress--eip-off-model-eni": "AssociateAddress",
}

#: sample -> status per function its rules route it to ({} = no rule matches: EventBridge drops it).
EXPECTED: dict[str, dict[str, str]] = {
    "AttachRolePolicy--admin-on-model-execution-role": {IAM: "reported"},
    "AttachUserPolicy--invoke-on-star": {IAM: "reported"},
    "AuthorizeSecurityGroupEgress--model-tier-all-traffic": {SG: "reported", DSG: "compliant"},
    "AuthorizeSecurityGroupIngress--default-sg-world-ssh": {SG: "remediated", DSG: "remediated"},
    "AuthorizeSecurityGroupIngress--failed-call": {},
    # harmless for SgGuard; DefaultSgGuard reports PER-SG-5 (a tier reached by a CIDR, not a group)
    "AuthorizeSecurityGroupIngress--harmless-https-from-vpc": {SG: "compliant", DSG: "reported"},
    # Perimeter's own calls: the rules drop them before any function (issue 11)
    "AuthorizeSecurityGroupIngress--perimeter-own-role": {},
    "AuthorizeSecurityGroupIngress--shorthand-form": {SG: "remediated", DSG: "compliant"},
    "AuthorizeSecurityGroupIngress--wide-cidr-8080": {SG: "remediated", DSG: "compliant"},
    "AuthorizeSecurityGroupIngress--world-all-ipv6": {SG: "remediated", DSG: "compliant"},
    "AuthorizeSecurityGroupIngress--world-ssh": {SG: "remediated", DSG: "compliant"},
    "CreateEndpoint--deepseek-r1-outside-vpc": {MODEL: "reported"},
    "CreateEndpoint--perimeter-own-role": {},
    "CreateEndpointConfig--deepseek-r1": {MODEL: "reported"},
    "CreateModel--deepseek-r1-outside-vpc": {DSG: "no-op", MODEL: "reported"},
    "CreateModel--deepseek-r1-private-vpc": {DSG: "compliant", MODEL: "compliant"},
    "CreateModel--failed-call": {},
    # DefaultSgGuard names the fix for the model; posture creates the VPC's missing flow log
    "CreateModel--vpc-default-sg": {DSG: "reported", MODEL: "remediated"},
    "CreateNetworkInterface--service-created-default-sg": {DSG: "reported"},
    "CreateNetworkInterface--user-default-sg": {DSG: "remediated"},
    # the endpoint's ENI is the service's (requester-managed): the fix is named, not made
    "CreateVpcEndpoint--interface-default-sg": {DSG: "reported"},
    # the default group added to an endpoint: its ENI is the service's, the fix is named
    "ModifyVpcEndpoint--add-default-sg": {DSG: "reported"},
    # launch templates: detect only; a clean default version resolves (see below)
    "CreateLaunchTemplate--default-sg": {DSG: "reported"},
    "CreateLaunchTemplateVersion--model-tier-public-ip": {DSG: "reported"},
    "ModifyLaunchTemplate--clean-version-made-default": {DSG: "reported"},
    "DeleteLaunchTemplate--inference-workers": {DSG: "resource-gone"},
    # a Studio domain whose apps reach the internet directly (PER-VPC-1)
    "CreateDomain--public-internet-only": {MODEL: "reported"},
    "DeleteDomain--ml-studio": {MODEL: "resource-gone"},
    "CreateNotebookInstance--default-sg": {DSG: "reported", MODEL: "remediated"},
    "CreateNotebookInstance--direct-internet": {DSG: "no-op", MODEL: "reported"},
    "CreatePolicyVersion--invoke-on-star": {IAM: "reported"},
    "CreateSecurityGroup--model-tier": {SG: "reported"},
    # flow_logs.scope defaults to model VPCs: a new VPC no model uses needs no flow log
    "CreateVpc--new-vpc": {FLOW: "compliant"},
    # a model VPC's flow log made (the call): in scope, judged, nothing to report
    "CreateFlowLogs--vpc-all-traffic": {FLOW: "compliant"},
    # the index knew the deleted flow log (its CreateFlowLogs was judged first): Perimeter
    # tells its VPC and makes it a new one
    "DeleteFlowLogs--wrapped-request": {FLOW: "remediated"},
    # A Delete* call leaves its resource gone: an empty account is the state it leaves.
    "DeleteEndpoint--deepseek-r1": {MODEL: "resource-gone"},
    "DeleteModel--deepseek-r1-outside-vpc": {MODEL: "resource-gone"},
    "DeleteNotebookInstance--direct-internet": {MODEL: "resource-gone"},
    "DeletePolicy--model-invokers": {IAM: "resource-gone"},
    "DeleteRole--model-execution-role": {IAM: "resource-gone"},
    "DeleteUser--data-scientist": {IAM: "resource-gone"},
    "DeleteVpc--model-vpc": {FLOW: "resource-gone"},
    # The removed v2 was not the default (AWS refuses to delete that): nothing changes.
    "DeletePolicyVersion--invoke-on-star-version-removed": {IAM: "compliant"},
    # Fixes: the grant was made and reported first; the fix resolves its finding ("reported"
    # is the handler's status for a report that only resolves). See RESOLVES.
    "DeleteRolePolicy--invoke-on-star-removed": {IAM: "reported"},
    "DeleteUserPolicy--bedrock-invoke-removed": {IAM: "reported"},
    "DetachRolePolicy--admin-removed": {IAM: "reported"},
    "DetachUserPolicy--invoke-on-star-removed": {IAM: "reported"},
    "SetDefaultPolicyVersion--back-to-scoped": {IAM: "reported"},
    "Malformed--not-cloudtrail": {},
    "ModifyInstanceAttribute--groupset-default-sg": {DSG: "remediated"},
    "ModifyNetworkInterfaceAttribute--attach-default-sg": {DSG: "remediated"},
    "ModifyNetworkInterfaceAttribute--failed-call": {},
    "ModifyNetworkInterfaceAttribute--perimeter-own-role": {},
    "ModifyNetworkInterfaceAttribute--source-dest-check": {DSG: "no-op"},
    "ModifySecurityGroupRules--widen-to-world": {SG: "remediated", DSG: "compliant"},
    # the default group widened: SgGuard revokes the rule, DefaultSgGuard empties the group
    "ModifySecurityGroupRules--default-sg-widen": {SG: "remediated", DSG: "remediated"},
    "PutRolePolicy--invoke-on-star": {IAM: "reported"},
    "PutUserPolicy--bedrock-invoke-star": {IAM: "reported"},
    "RunInstances--network-interface-default-sg": {DSG: "remediated"},
    "RunInstances--no-security-group": {DSG: "remediated"},
    "UpdateEndpoint--new-config": {MODEL: "reported"},
    # issue 9 A, IAM doors: a group's grant is a finding on the group and its member
    "PutGroupPolicy--invoke-on-every-endpoint": {IAM: "reported"},
    "AttachGroupPolicy--invoke-on-every-endpoint": {IAM: "reported"},
    "AddUserToGroup--group-invokes-every-endpoint": {IAM: "reported"},
    "DetachGroupPolicy--invoke-removed": {IAM: "reported"},
    "DeleteGroupPolicy--invoke-removed": {IAM: "reported"},
    # the member leaves (its finding resolves); the group still grants it: its finding stays
    "RemoveUserFromGroup--analyst-leaves": {IAM: "reported"},
    "DeleteGroup--data-scientists": {IAM: "resource-gone"},
    "UpdateAssumeRolePolicy--wildcard-trust": {IAM: "reported"},
    # an instance-type change fixes nothing: the notebook's finding (made when it was) stays
    "UpdateNotebookInstance--new-instance-type": {MODEL: "reported"},
    # A person's fix of a group Perimeter reported (in dry run): the findings resolve. See FIXES.
    "RevokeSecurityGroupIngress--person-closes-world-ssh": {SG: "resolved", DSG: "compliant"},
    "RevokeSecurityGroupEgress--person-removes-allow-all": {SG: "resolved", DSG: "compliant"},
    "DeleteSecurityGroup--group-deleted": {SG: "resolved"},
    # the list the model tier's HTTPS rule names now holds 0.0.0.0/0: that rule is revoked
    "ModifyManagedPrefixList--entry-opens-world": {SG: "remediated"},
    # Bedrock, served by the embedded stand-in (see STAND_IN)
    "CreateGuardrail--prompt-attack-high": {MODEL: "reported"},  # resolves only: see FIXES
    "UpdateGuardrail--prompt-attack-lowered": {MODEL: "reported"},
    "DeleteGuardrail--deleted": {MODEL: "reported"},
    "CreateModelImportJob--deepseek-r1-distill": {MODEL: "reported"},
    # the endpoint's ENIs are the service's: the fix is named; posture creates the missing flow log
    "CreateMarketplaceModelEndpoint--deepseek-default-sg": {DSG: "reported", MODEL: "remediated"},
    "UpdateMarketplaceModelEndpoint--no-vpc": {MODEL: "reported"},
    "DeleteMarketplaceModelEndpoint--deepseek-default-sg": {MODEL: "resource-gone"},
    # issue 11: staged (see the test): the remediation first, then its undo
    "SecurityHubCustomAction--undo-and-exempt": {"UndoFunction": "done"},
    # PER-NET-1 ("reported" is also the status of a report that only resolves)
    **{sample: {NET: "reported"} for sample in (*NET_OPENS, *NET_CLOSES)},
    # issue 9's doors, served by the stand-in too (UpdateDomain by the SageMaker extension)
    "RegisterMarketplaceModelEndpoint--existing-endpoint-no-vpc": {MODEL: "reported"},
    "UpdateDomain--vpc-only": {MODEL: "reported"},  # resolves only: see FIXES
    "CreateGuardrailVersion--prompt-attack-lowered": {MODEL: "reported"},
    "PutEnforcedGuardrailConfiguration--weak-guardrail": {MODEL: "reported"},
    "DeleteEnforcedGuardrailConfiguration--strong-guardrail-removed": {MODEL: "reported"},
    "CreateCustomModelDeployment--deepseek-r1-distill": {MODEL: "reported"},
    "PutResourcePolicy--custom-model-to-anyone": {MODEL: "reported"},
    "DeleteResourcePolicy--custom-model-unshared": {MODEL: "reported"},  # resolves only: see FIXES
}
#: samples served in part by the runner's moto extensions -> what the output must name
STAND_IN = {
    "ModifyManagedPrefixList--entry-opens-world": (
        "ec2: embedded extension, moto lacks the DescribeSecurityGroups filter ip-permission.prefix-list-id"
    ),
    "CreateGuardrail--prompt-attack-high": "GetGuardrail",
    "UpdateGuardrail--prompt-attack-lowered": "UpdateGuardrail",
    "DeleteGuardrail--deleted": "DeleteGuardrail",
    "CreateModelImportJob--deepseek-r1-distill": "CreateModelImportJob",
    "CreateMarketplaceModelEndpoint--deepseek-default-sg": "GetMarketplaceModelEndpoint",
    "UpdateMarketplaceModelEndpoint--no-vpc": "GetMarketplaceModelEndpoint",
    "DeleteMarketplaceModelEndpoint--deepseek-default-sg": "DeleteMarketplaceModelEndpoint",
    "RegisterMarketplaceModelEndpoint--existing-endpoint-no-vpc": "RegisterMarketplaceModelEndpoint",
    "UpdateDomain--vpc-only": "sagemaker: embedded extension, moto lacks UpdateDomain",
    "CreateGuardrailVersion--prompt-attack-lowered": "CreateGuardrailVersion",
    "PutEnforcedGuardrailConfiguration--weak-guardrail": "ListEnforcedGuardrailsConfiguration",
    "DeleteEnforcedGuardrailConfiguration--strong-guardrail-removed": "DeleteEnforcedGuardrailConfiguration",
    "CreateCustomModelDeployment--deepseek-r1-distill": "CreateCustomModelDeployment",
    "PutResourcePolicy--custom-model-to-anyone": "GetResourcePolicy",
    "DeleteResourcePolicy--custom-model-unshared": "DeleteResourcePolicy",
}
#: A person's fix: the offending call was made and judged first (Perimeter in dry run for the
#: groups, so nothing was revoked and the finding was open), then the fix, which resolves every
#: finding of the resource with no write to the resource's service.
FIXES = {
    "RevokeSecurityGroupIngress--person-closes-world-ssh": (
        "AuthorizeSecurityGroupIngress",
        {SG: "reported", DSG: "compliant"},
        {"PER-SG-1", "PER-SG-2"},
    ),
    "RevokeSecurityGroupEgress--person-removes-allow-all": (
        "AuthorizeSecurityGroupEgress",
        {SG: "reported", DSG: "compliant"},
        {"PER-SG-4"},
    ),
    "DeleteSecurityGroup--group-deleted": (
        "AuthorizeSecurityGroupIngress",
        {SG: "reported", DSG: "compliant"},
        {"PER-SG-1", "PER-SG-2"},
    ),
    # the imported model was judged while no guardrail blocked prompt attacks
    "CreateGuardrail--prompt-attack-high": ("CreateModelImportJob", {MODEL: "reported"}, {"PER-GR-1"}),
    # the public Studio domain was judged when made; moving its apps into the VPC resolves it
    "UpdateDomain--vpc-only": ("CreateDomain", {MODEL: "reported"}, {"PER-VPC-1"}),
    # the policy sharing the model with anyone was judged when put; deleting it resolves that
    "DeleteResourcePolicy--custom-model-unshared": ("PutResourcePolicy", {MODEL: "reported"}, {"PER-IAM-1"}),
}
#: fix samples -> the principal whose finding the earlier (staged) grant opened and the fix resolves
RESOLVES = {
    "DeleteRolePolicy--invoke-on-star-removed": ("PutRolePolicy", "app-backend"),
    "DeleteUserPolicy--bedrock-invoke-removed": ("PutUserPolicy", "data-scientist"),
    "DetachRolePolicy--admin-removed": ("AttachRolePolicy", "sagemaker-deepseek-execution"),
    "DetachUserPolicy--invoke-on-star-removed": ("AttachUserPolicy", "data-scientist"),
    "SetDefaultPolicyVersion--back-to-scoped": ("CreatePolicyVersion", "model-invokers"),
    "DetachGroupPolicy--invoke-removed": ("AttachGroupPolicy", "data-scientists"),
    "DeleteGroupPolicy--invoke-removed": ("PutGroupPolicy", "data-scientists"),
}
#: enforced-guardrail samples -> the earlier calls staged through the handlers
ENFORCEMENT = {
    "PutEnforcedGuardrailConfiguration--weak-guardrail": [],
    "DeleteEnforcedGuardrailConfiguration--strong-guardrail-removed": [
        {"event_name": "PutEnforcedGuardrailConfiguration", "statuses": {MODEL: "compliant"}}
    ],
}
GUARDRAIL_CHANGES = (
    "UpdateGuardrail--prompt-attack-lowered",
    "DeleteGuardrail--deleted",
    "CreateGuardrailVersion--prompt-attack-lowered",
)
READ_BACK = {
    *RESOLVES,
    *GUARDRAIL_CHANGES,
    *ENFORCEMENT,
    "RegisterMarketplaceModelEndpoint--existing-endpoint-no-vpc",
    "ModifyManagedPrefixList--entry-opens-world",
}
SAMPLES = sorted(p.stem for p in (ROOT / "events").glob("*.json"))

#: what each remediated security-group sample opened, which must be gone afterwards
OPENED = {
    "AuthorizeSecurityGroupIngress--world-ssh": "ingress tcp/22 from 0.0.0.0/0",
    "AuthorizeSecurityGroupIngress--shorthand-form": "ingress tcp/22 from 203.0.113.9/0",
    "AuthorizeSecurityGroupIngress--wide-cidr-8080": "ingress tcp/8080 from 52.0.0.0/8",
    "AuthorizeSecurityGroupIngress--world-all-ipv6": "ingress all from ::/0",
    "ModifySecurityGroupRules--widen-to-world": "ingress tcp/8888 from 0.0.0.0/0",
    "AuthorizeSecurityGroupIngress--default-sg-world-ssh": "ingress tcp/22 from 0.0.0.0/0",
    "ModifySecurityGroupRules--default-sg-widen": "ingress tcp/22 from 0.0.0.0/0",
}


def test_every_sample_has_an_expected_outcome() -> None:
    # every sample is staged (a new one needs its stager in stage.py and an entry here)
    assert sorted(EXPECTED) == SAMPLES


def _run(sample: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any] | None, str]:
    code = cli_main(["invoke", "-e", str(ROOT / "events" / f"{sample}.json"), "--embedded"])
    captured = capsys.readouterr()
    out = json.loads(captured.out) if captured.out.strip() else None
    return code, out, captured.err


class SampleCalls:
    """The AWS operations the handlers make on the sample's own event (not on the earlier calls
    staging runs first), by service, recorded on botocore's client as the functions build it."""

    def __init__(self) -> None:
        self.event_id: str | None = None
        self.calls: dict[str, list[str]] = {}
        self._running: list[bool] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        invoke, make_api_call = local_invoke.invoke, BaseClient._make_api_call

        def recording_invoke(spec: Any, event: Any, **kwargs: Any) -> Any:
            self._running.append(event["detail"].get("eventID") == self.event_id)
            try:
                return invoke(spec, event, **kwargs)
            finally:
                self._running.pop()

        def recording_call(client: Any, operation: str, params: Any) -> Any:
            if self._running and self._running[-1]:
                self.calls.setdefault(client.meta.service_model.service_name, []).append(operation)
            return make_api_call(client, operation, params)

        monkeypatch.setattr(local_invoke, "invoke", recording_invoke)
        monkeypatch.setattr(BaseClient, "_make_api_call", recording_call)


@pytest.fixture
def sample_calls(monkeypatch: pytest.MonkeyPatch) -> SampleCalls:
    recorder = SampleCalls()
    recorder.install(monkeypatch)
    return recorder


READS = ("Describe", "Get", "List")


def _check_extensions_named(sample: str, out: dict[str, Any], err: str) -> None:
    """The runner's moto extensions are named whenever they served a call, and only then."""
    if sample in STAND_IN:
        assert any(STAND_IN[sample] in line for line in out["moto_extensions"]), out["moto_extensions"]
        assert [line for line in err.splitlines() if "moto_ext.py" in line], err[-2000:]
    else:
        assert "moto_extensions" not in out and "moto_ext.py" not in err


def _check_fix(sample: str, out: dict[str, Any], calls: dict[str, list[str]]) -> None:
    """The offending call was judged first (its finding open); the fix resolved every finding of
    the resource, reported to Security Hub, with no write to EC2 or Bedrock."""
    grant, grant_statuses, controls = FIXES[sample]
    after = out["after"]
    assert out["staged"]["earlier"] == [{"event_name": grant, "statuses": grant_statuses}]
    assert {f["control"] for f in after["findings"]} == controls
    assert all((f["compliance"], f["record_state"]) == ("PASSED", "ARCHIVED") for f in after["findings"]), (
        after["findings"]
    )
    assert after["audit"] == []
    writes = [
        f"{service}.{op}"
        for service, ops in calls.items()
        if service in ("ec2", "bedrock")
        for op in ops
        if not op.startswith(READS)
    ]
    assert "BatchImportFindings" in calls.get("securityhub", []), calls  # the resolution, reported
    assert writes == [], "a person's fix never makes Perimeter write to the resource"


UNDO_SAMPLE = "SecurityHubCustomAction--undo-and-exempt"


def test_the_custom_action_sample_undoes_a_staged_remediation(capsys: pytest.CaptureFixture[str]) -> None:
    """Staged: the finding's rule (tcp/22 from the world) is opened on its group by the finding's
    actor and run through the routed handlers first (SgGuard revokes, records, reports); the
    custom action then carries the finding Security Hub stores, and the undo puts the rule back,
    exempts it and notes the finding (BatchUpdateFindings: the runner's extension, named)."""
    code, out, err = _run(UNDO_SAMPLE, capsys)
    assert code == 0 and out is not None, err[-2000:]
    assert out["staged"]["earlier"] == [
        {
            "event_name": "AuthorizeSecurityGroupIngress",
            "statuses": {SG: "remediated", DSG: "compliant"},
        }
    ]
    [r] = out["results"]
    assert (r["function"], r["result"]["status"]) == ("UndoFunction", EXPECTED[UNDO_SAMPLE]["UndoFunction"])
    [undone] = r["result"]["results"]
    assert undone["status"] == "undone" and undone["exemptions"] == 2, undone
    gid = undone["restored"]["group_id"]
    assert undone["finding_id"].startswith("perimeter/PER-SG-1/") and undone["finding_id"].endswith(f"/{gid}")
    # read back: the rule the remediation removed is on the group again
    assert "ingress tcp/22 from 0.0.0.0/0" in out["after"]["security_group_rules"][gid]
    assert out["after"]["audit"] == [
        {"audit_id": undone["audit_id"], "action": "revoke-security-group-rules"}
    ]
    [noted] = [f for f in out["after"]["findings"] if f["control"] == "PER-SG-1"]
    assert noted["workflow"] == "SUPPRESSED" and noted["note"].startswith(
        "Undone by a Security Hub user until "
    )
    assert out["moto_extensions"] == ["securityhub: embedded extension, moto lacks BatchUpdateFindings"]


def _check_read_back(sample: str, staged: dict[str, Any], after: dict[str, Any]) -> None:
    """Samples with their own read-back: the fixes of grants, and samples served by the
    runner's extensions."""
    if sample in RESOLVES:
        # The grant was judged first (its finding active), then the fix resolved that finding.
        grant, principal = RESOLVES[sample]
        assert staged["earlier"] == [{"event_name": grant, "statuses": {IAM: "reported"}}]
        [finding] = [f for f in after["findings"] if f["resource"] == principal]
        assert finding == {
            "control": "PER-IAM-1",
            "resource": principal,
            "compliance": "PASSED",
            "record_state": "ARCHIVED",
        }
        assert not [f for f in after["findings"] if f["compliance"] == "FAILED"]
        return
    if sample == "ModifyManagedPrefixList--entry-opens-world":
        # The model tier's HTTPS rule from the list (now holding the world) is revoked, audited, resolved.
        pl = staged["ids"]["pl-0a1b2c3d4e5f60001"]
        [rules] = after["security_group_rules"].values()
        assert not [r for r in rules if pl in r], rules
        assert [a["action"] for a in after["audit"]] == ["revoke-security-group-rules"]
        assert [(f["control"], f["compliance"]) for f in after["findings"]] == [("PER-SG-1", "PASSED")]
        return
    assert after["audit"] == []
    if sample in GUARDRAIL_CHANGES:
        # The guardrail the call weakened or deleted (its new id) has its own finding, open.
        gid = staged["ids"]["gr4h1ghpr0mp"]
        [finding] = [f for f in after["findings"] if f["resource"] == gid]
        assert (finding["control"], finding["compliance"]) == ("PER-GR-1", "FAILED")
        return
    if sample in ENFORCEMENT:
        # The account's enforced guardrails (the staged strong one judged first, when deleted) no
        # longer block prompt attacks at HIGH for the model Bedrock serves: the finding is open.
        assert staged["earlier"] == ENFORCEMENT[sample]
        assert [(f["control"], f["compliance"], f["record_state"]) for f in after["findings"]] == [
            ("PER-GR-1", "FAILED", "ACTIVE")
        ]
        return
    # RegisterMarketplaceModelEndpoint: a HIGH guardrail exists, so the one finding is the
    # registered endpoint's, outside any VPC.
    assert after["findings"] == [
        {
            "control": "PER-VPC-1",
            "resource": "deepseek-r1-marketplace",
            "compliance": "FAILED",
            "record_state": "ACTIVE",
        }
    ]


@pytest.mark.parametrize("sample", sorted(set(EXPECTED) - {UNDO_SAMPLE}))
def test_sample_ends_as_its_name_promises(  # noqa: C901 - one plain case per sample kind, read top-down
    sample: str, capsys: pytest.CaptureFixture[str], sample_calls: SampleCalls
) -> None:
    event = json.loads((ROOT / "events" / f"{sample}.json").read_text(encoding="utf-8"))
    sample_calls.event_id = (event.get("detail") or {}).get("eventID")
    code, out, err = _run(sample, capsys)
    assert code == 0 and out is not None, err[-2000:]
    statuses = {r["function"]: (r["result"]["status"] if r["ok"] else r["error"]) for r in out["results"]}
    assert statuses == EXPECTED[sample]
    after = out["after"]
    staged = out["staged"]
    _check_extensions_named(sample, out, err)
    if sample in FIXES:
        _check_fix(sample, out, sample_calls.calls)
        return
    if sample in READ_BACK:
        _check_read_back(sample, staged, after)
        return
    if sample == "ModifyLaunchTemplate--clean-version-made-default":
        # The template on the default group was judged first; the clean default version resolves it.
        assert staged["earlier"] == [{"event_name": "CreateLaunchTemplate", "statuses": {DSG: "reported"}}]
        assert [(f["control"], f["compliance"], f["record_state"]) for f in after["findings"]] == [
            ("PER-DSG-2", "PASSED", "ARCHIVED")
        ]
        assert after["audit"] == []
        return
    if sample == "RemoveUserFromGroup--analyst-leaves":
        # The membership was judged first (user and group active); leaving resolves the user only.
        assert staged["earlier"] == [{"event_name": "AddUserToGroup", "statuses": {IAM: "reported"}}]
        states = {f["resource"]: (f["compliance"], f["record_state"]) for f in after["findings"]}
        assert states == {"analyst": ("PASSED", "ARCHIVED"), "data-scientists": ("FAILED", "ACTIVE")}
        return
    if sample == "CreateFlowLogs--vpc-all-traffic":
        # The call's VPC was judged (in scope), and holds the flow log the call made.
        vpc, fl = staged["ids"]["vpc-0a1b2c3d4e5f60001"], staged["ids"]["fl-0a1b2c3d4e5f60009"]
        [result] = [r["result"] for r in out["results"]]
        assert result["vpcs"] == [vpc] and after["flow_logs"] == {fl: vpc}
    if sample == "DeleteFlowLogs--wrapped-request":
        # The index named the deleted flow log's VPC: a new flow log there, audited, resolved.
        vpc, fl = staged["ids"]["vpc-0a1b2c3d4e5f60042"], staged["ids"]["fl-0a1b2c3d4e5f60001"]
        assert staged["earlier"] == [{"event_name": "CreateFlowLogs", "statuses": {FLOW: "compliant"}}]
        [result] = [r["result"] for r in out["results"]]
        assert result["deleted_from"] == {fl: vpc}
        assert list(after["flow_logs"].values()) == [vpc] and fl not in after["flow_logs"]
        assert [a["action"] for a in after["audit"]] == ["create-flow-log"]
        assert [(f["control"], f["resource"], f["compliance"]) for f in after["findings"]] == [
            ("PER-FL-1", vpc, "PASSED")
        ]
        return
    if sample == "UpdateNotebookInstance--new-instance-type":
        # Judged when made (finding active); the update leaves that one finding active.
        assert staged["earlier"] == [
            {"event_name": "CreateNotebookInstance", "statuses": {DSG: "no-op", MODEL: "reported"}}
        ]
        assert after["findings"] == [
            {
                "control": "PER-VPC-1",
                "resource": "deepseek-eval",
                "compliance": "FAILED",
                "record_state": "ACTIVE",
            }
        ]
    if sample in NET_OPENS or sample in NET_CLOSES:
        # One finding, on the model server's ENI: FAILED after an opening call, resolved by a
        # closing one (the opening call was judged first). Detect only: no audit record.
        eni = staged["ids"]["eni-0a0000000000000c3"]
        closing = sample in NET_CLOSES
        assert after["findings"] == [
            {
                "control": "PER-NET-1",
                "resource": eni,
                "compliance": "PASSED" if closing else "FAILED",
                "record_state": "ARCHIVED" if closing else "ACTIVE",
            }
        ]
        assert staged["earlier"] == (
            [{"event_name": NET_CLOSES[sample], "statuses": {NET: "reported"}}] if closing else []
        )
        assert after["audit"] == []
        return
    if sample.endswith(("failed-call", "perimeter-own-role")) or sample.startswith(("Malformed", "Delete")):
        assert after["audit"] == [] and after["findings"] == []
        return
    assert staged["created"], "the sample's resources were built"
    if sample in OPENED:
        # The group the call touched, read back: the opened rule is gone, nothing else was.
        # (a default group DefaultSgGuard emptied reads back with no rules at all)
        rules = after["security_group_rules"]
        assert rules and all(OPENED[sample] not in r for r in rules.values()), rules
        assert any(a["action"] == "revoke-security-group-rules" for a in after["audit"])
        revoked = [f for f in after["findings"] if f["control"].startswith("PER-SG-")]
        assert revoked and all(f["compliance"] == "PASSED" for f in revoked), after["findings"]
    if "reported" in statuses.values():
        assert any(f["compliance"] == "FAILED" and f["record_state"] == "ACTIVE" for f in after["findings"])
    if set(statuses.values()) <= {"compliant", "no-op", "ignored"}:
        assert after["audit"] == []
        assert not [f for f in after["findings"] if f["compliance"] == "FAILED"]


def test_harmless_rule_stays(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run("AuthorizeSecurityGroupIngress--harmless-https-from-vpc", capsys)
    assert out is not None
    [rules] = out["after"]["security_group_rules"].values()
    assert "ingress tcp/443 from 10.0.0.0/16" in rules


def test_ids_are_rewritten_consistently(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run("AuthorizeSecurityGroupIngress--world-ssh", capsys)
    assert out is not None
    ids = out["staged"]["ids"]
    group = ids["sg-0123456789abcdef0"]
    [result] = [r["result"] for r in out["results"] if r["function"] == SG]
    assert result["groups"][0]["group_id"] == group
    assert result["groups"][0]["revoked"] == [ids["sgr-0a1b2c3d4e5f60001"]]


@pytest.mark.parametrize("event_name", sorted(UNSUPPORTED))
def test_without_the_extensions_a_sample_moto_cannot_serve_says_so(event_name: str) -> None:
    # Against another local server (`local up`) moto has no extension: stage says what it lacks
    # instead of pretending (the command prints it in one line and exits 3).
    sample = next(p for p in (ROOT / "events").glob(f"{event_name}--*.json"))
    event = json.loads(sample.read_text(encoding="utf-8"))
    assert stage(None, event, extended=False).unsupported == UNSUPPORTED[event_name]


def test_local_server_without_extensions_exits_3_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from perimeter_local.embedded import embedded_aws

    with embedded_aws() as endpoint:
        # reached as `local up`'s server is (--stage, not --embedded): the runner cannot count on
        # the runner's extensions there, so it stages nothing and says what moto lacks
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        code = cli_main(["invoke", "-e", str(ROOT / "events" / "DeleteGuardrail--deleted.json"), "--stage"])
    captured = capsys.readouterr()
    assert code == EXIT_UNSUPPORTED and captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert "does not implement Bedrock guardrails" in line and "--embedded" in line
