"""The default-SG migration through the real handler under moto: dependants moved, default SG
emptied, connectivity among dependants preserved, audit trail restorable, faults survived."""

from __future__ import annotations

import pytest

from tests.integration import dsg_support
from tests.integration.dsg_support import (
    Account,
    FaultyEc2,
    build_vpc,
    groups_of,
    install_client,
    modify_eni_event,
    rules_of,
)

account = dsg_support.account  # the fixture, under the name the tests take


def test_eni_event_moves_every_dependant_and_empties_default(account: Account) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=2, enis=2)
    result = account.invoke(modify_eni_event(vpc.enis[-1], [vpc.default_sg]))
    assert result["status"] == "remediated", result
    after = groups_of(ec2, vpc.enis)
    interim = result["vpcs"][0]["interim_group_id"]
    assert interim and interim != vpc.default_sg
    assert all(groups == [interim] for groups in after.values()), after
    assert rules_of(ec2, vpc.default_sg) == []
    kept = rules_of(ec2, interim)
    self_refs = [
        r for r in kept if not r["IsEgress"] and r.get("ReferencedGroupInfo", {}).get("GroupId") == interim
    ]
    assert len(self_refs) == 1 and self_refs[0]["IpProtocol"] == "-1"
    assert not [r for r in kept if r.get("CidrIpv4") == "0.0.0.0/0" and not r["IsEgress"]]


def _audit_for(account: Account) -> dict:
    records = [r for r in account.audit_records() if r["action"] == "default-sg-migration"]
    assert len(records) == 1, records
    return records[0]


def test_fault_half_way_then_retry_resumes_and_restore_undoes(account: Account) -> None:
    from perimeter.restore.dsg import restore_default_sg_migration

    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=2, enis=2)
    original = groups_of(ec2, vpc.enis)
    original_rules = {
        (r["IsEgress"], r["IpProtocol"], r.get("CidrIpv4"), r.get("ReferencedGroupInfo", {}).get("GroupId"))
        for r in rules_of(ec2, vpc.default_sg)
    }
    ev = modify_eni_event(vpc.enis[0], [vpc.default_sg])
    # The 4th ModifyNetworkInterfaceAttribute is the second ENI's "remove default" step: it fails
    # after the interim group was added to that ENI.
    faulty = FaultyEc2(account.session.client("ec2"), "modify_network_interface_attribute", 4)
    install_client(faulty)
    with pytest.raises(Exception, match="injected"):
        account.invoke(ev)
    mid = groups_of(ec2, vpc.enis)
    assert all(mid.values()), f"an ENI without a group: {mid}"
    assert all(lst for lst in faulty.group_lists), faulty.group_lists
    assert len(rules_of(ec2, vpc.default_sg)) == len(original_rules), "default emptied before all moved"
    half = [e for e, g in mid.items() if vpc.default_sg in g and len(g) == 2]
    assert len(half) == 1, mid
    record = _audit_for(account)
    assert record["status"] == "started"
    assert set(record["enis"]) == set(vpc.enis)

    # Lambda's retry: a fresh container, the same event.
    faulty_retry = FaultyEc2(account.session.client("ec2"), "none", 0)
    install_client(faulty_retry)
    result = account.invoke(ev)
    assert result["status"] == "remediated", result
    interim = result["vpcs"][0]["interim_group_id"]
    done = groups_of(ec2, vpc.enis)
    assert all(g == [interim] for g in done.values()), done
    assert rules_of(ec2, vpc.default_sg) == []
    assert all(lst for lst in faulty_retry.group_lists)
    record = _audit_for(account)
    assert record["status"] == "complete"
    # The first attempt's view of each ENI wins: nothing recorded is lost on the retry.
    assert {e: v["before"] for e, v in record["enis"].items()} == original
    assert len(record["default_rules"]) == len(original_rules)

    summary = restore_default_sg_migration(account.session, record)
    assert groups_of(ec2, vpc.enis) == original
    restored_rules = {
        (r["IsEgress"], r["IpProtocol"], r.get("CidrIpv4"), r.get("ReferencedGroupInfo", {}).get("GroupId"))
        for r in rules_of(ec2, vpc.default_sg)
    }
    assert restored_rules == original_rules
    assert summary["groups_deleted"] == [interim]
    # A second restore changes nothing and does not fail.
    again = restore_default_sg_migration(account.session, record)
    assert again["rules_restored"] == [] and groups_of(ec2, vpc.enis) == original


def test_findings_and_notification_say_what_moved(account: Account) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=1)
    result = account.invoke(modify_eni_event(vpc.enis[-1], [vpc.default_sg]))
    interim = result["vpcs"][0]["interim_group_id"]
    findings = {
        f["GeneratorId"] + "/" + f["Resources"][0]["Id"].rsplit("/", 1)[-1]: f for f in account.findings()
    }
    dsg1 = findings[f"PER-DSG-1/{vpc.default_sg}"]
    assert dsg1["Compliance"]["Status"] == "PASSED" and dsg1["RecordState"] == "ARCHIVED"
    assert "tcp/22 from 0.0.0.0/0" in dsg1["Description"] and "PER-SG-1" in dsg1["Description"]
    assert "perimeter restore" in dsg1["Description"]
    for eni in vpc.enis:
        f = findings[f"PER-DSG-2/{eni}"]
        assert f["Compliance"]["Status"] == "PASSED"
        assert f"-> {interim}" in f["Description"]
    [msg] = account.messages()
    assert msg["migrations"][0]["default_group_id"] == vpc.default_sg
    assert {m["eni"] for m in msg["migrations"][0]["moved"]} == set(vpc.enis)
    assert any("tcp/22 from 0.0.0.0/0" in x for x in msg["migrations"][0]["left_out_of_interim"])


def test_dry_run_reports_and_changes_nothing(account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    import perimeter.core.runtime as runtime

    monkeypatch.setenv("PERIMETER_DRY_RUN", "true")
    runtime.reset()
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=1)
    before = groups_of(ec2, vpc.enis)
    result = account.invoke(modify_eni_event(vpc.enis[-1], [vpc.default_sg]))
    assert result["status"] == "reported"
    assert groups_of(ec2, vpc.enis) == before
    assert len(rules_of(ec2, vpc.default_sg)) == 3
    assert account.audit_records() == []
    statuses = {f["GeneratorId"]: f["Compliance"]["Status"] for f in account.findings()}
    assert statuses == {"PER-DSG-1": "FAILED", "PER-DSG-2": "FAILED"}


def test_compliant_eni_event_writes_nothing(account: Account) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0)
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc.vpc_id)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=vpc.subnet_id, Groups=[sg])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    counting = FaultyEc2(account.session.client("ec2"), "none", 0)
    install_client(counting)
    result = account.invoke(modify_eni_event(eni, [sg]))
    assert result["status"] == "compliant"
    # One read of the ENI, one of its groups' tags (PER-TIER-1 is on): nothing else, no write.
    assert counting.calls == {"describe_network_interfaces": 1, "describe_security_groups": 1}
    assert account.findings() == [] and account.audit_records() == []


def test_unmovable_dependant_blocks_the_migration_with_the_exact_fix(account: Account) -> None:
    from tests.integration.dsg_support import ServiceOwned

    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=0)
    efs = ec2.create_network_interface(
        SubnetId=vpc.subnet_id, Description="EFS mount target for fs-1234567 (fsmt-89abcdef)"
    )
    efs_id = efs["NetworkInterface"]["NetworkInterfaceId"]
    install_client(ServiceOwned(account.session.client("ec2"), {efs_id}))
    before = groups_of(ec2, [*vpc.enis, efs_id])
    result = account.invoke(modify_eni_event(vpc.enis[0], [vpc.default_sg]))
    assert result["status"] == "reported"
    assert groups_of(ec2, [*vpc.enis, efs_id]) == before, (
        "moving the others would cut them off from the EFS ENI"
    )
    assert len(rules_of(ec2, vpc.default_sg)) == 3
    assert result["vpcs"][0]["fixes"][efs_id].startswith(
        "aws efs modify-mount-target-security-groups --mount-target-id fsmt-89abcdef"
    )
    f = next(f for f in account.findings() if f["Resources"][0]["Id"].endswith(efs_id))
    assert f["Compliance"]["Status"] == "FAILED" and "fsmt-89abcdef" in f["Description"]


def test_quarantine_tagged_enis_go_to_an_empty_group(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    import perimeter.core.runtime as runtime
    from perimeter.policy import default_policy_text

    text = default_policy_text().replace(
        'quarantine: {enabled: false, tag: {key: "perimeter:quarantine", value: "true"}}',
        'quarantine: {enabled: true, tag: {key: "perimeter:quarantine", value: "true"}}',
    )
    assert "enabled: true" in text
    account.session.client("ssm").put_parameter(Name="perimeter-policy", Value=text, Type="String")
    monkeypatch.setenv("PERIMETER_POLICY_PARAMETER", "perimeter-policy")
    runtime.reset()
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=1)
    tagged = vpc.enis[-1]
    ec2.create_tags(Resources=[tagged], Tags=[{"Key": "perimeter:quarantine", "Value": "true"}])
    result = account.invoke(modify_eni_event(tagged, [vpc.default_sg]))
    summary = result["vpcs"][0]
    quarantine, interim = summary["quarantine_group_id"], summary["interim_group_id"]
    after = groups_of(ec2, vpc.enis)
    assert after[tagged] == [quarantine]
    assert after[vpc.enis[0]] == [interim]
    assert rules_of(ec2, quarantine) == []
    assert rules_of(ec2, vpc.default_sg) == []


def test_rules_elsewhere_naming_the_default_group_block_the_migration(account: Account) -> None:
    """A database group admits 5432 from the default group, and an app group sends 443 to it:
    its members reach the database through that rule, so moving them would cut them off."""
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=1)
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=db,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": vpc.default_sg}],
            }
        ],
    )
    before_groups = groups_of(ec2, vpc.enis)
    before_rules = rules_of(ec2, vpc.default_sg)
    result = account.invoke(modify_eni_event(vpc.enis[-1], [vpc.default_sg]))
    assert result["status"] == "reported", result
    assert groups_of(ec2, vpc.enis) == before_groups, "nobody moved"
    assert rules_of(ec2, vpc.default_sg) == before_rules, "the default group's rules stay"
    findings = [f for f in account.findings() if f["GeneratorId"] == "PER-DSG-2"]
    assert findings and all(f["Compliance"]["Status"] == "FAILED" for f in findings)
    assert all(f"{db}: tcp/5432 from {vpc.default_sg}" in f["Description"] for f in findings)
