"""The demo's default-SG scene, played against moto with a stand-in for the demo runner
(``route`` runs DefaultSgGuard's handler directly, as the runner would after matching the rule)."""

from __future__ import annotations

from typing import Any

from perimeter_local.scenes import default_sg

from tests.integration import dsg_support
from tests.integration.dsg_support import ACCOUNT, REGION, Account

account = dsg_support.account  # the fixture, under the name the tests take


class StandInDemo:
    def __init__(self, acct: Account, deployment: dict[str, str]) -> None:
        self.session = acct.session
        self.account, self.region = ACCOUNT, REGION
        self.deployment = deployment
        self.checks: list[tuple[bool, str]] = []
        self.lines: list[str] = []
        self._acct = acct

    def say(self, text: str = "") -> None:
        self.lines.append(text)

    def check(self, condition: bool, text: str) -> None:
        self.checks.append((bool(condition), text))

    def route(self, event: dict[str, Any], label: str) -> list[dict[str, Any]]:
        from perimeter_local.patterns import matches
        from perimeter_local.replay_route import without_own_role_clause
        from perimeter_local.template import load_template

        template = load_template(dsg_support.ROOT / "template.yaml")
        events = template["Resources"]["DefaultSgGuardFunction"]["Properties"]["Events"]
        # the clause on who acted names the stack's roles through intrinsics this unresolved
        # template leaves as objects (tests/integration/test_own_calls_pattern.py resolves them)
        patterns = [without_own_role_clause(e["Properties"]["Pattern"]) for e in events.values()]
        assert any(matches(p, event) for p in patterns), "no template rule matches"
        return [{"function": "DefaultSgGuardFunction", "ok": True, "result": self._acct.invoke(event)}]


def test_scene_moves_dependants_and_empties_default(account: Account) -> None:
    ec2 = account.ec2
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    dsg = dsg_support.default_sg_of(ec2, vpc)
    demo = StandInDemo(
        account,
        {
            "vpc_id": vpc,
            "private_subnet_id": private,
            "public_subnet_id": private,
            "default_sg_id": dsg,
            "model_sg_id": "",
            "db_sg_id": "",
            "app_sg_id": "",
        },
    )
    default_sg.play(demo)
    assert default_sg.TITLE
    assert len(demo.checks) == 5 and all(ok for ok, _ in demo.checks), demo.checks
    assert dsg_support.rules_of(ec2, dsg) == []
    assert any(line.strip().startswith("moved eni-") for line in demo.lines)
