"""Judge a group change against the policy and plan the remediation (pure).

``decide`` takes what the event says was added, what the group holds now, and the policy, and
returns a ``GroupDecision``: every violation with its control, score, severity, effective mode
and exemption, and the exact rules ``enforce`` may revoke. It never plans to touch a rule that
is not both offending and still present, nor anything an exemption covers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from perimeter.changes import GroupChange
from perimeter.context import GroupContext
from perimeter.controls import SG_CONTROLS, Control
from perimeter.policy import Exemption, Policy
from perimeter.rules import Rule
from perimeter.scoring import Score, score_rule


@dataclass(frozen=True, slots=True)
class Violation:
    control: Control
    rule: Rule
    score: Score
    severity: str
    mode: str
    exemption: Exemption | None
    present: bool
    enforce_min_score: int

    @property
    def enforce(self) -> bool:
        """Whether remediation may act on this rule."""
        return (
            self.present
            and self.mode == "enforce"
            and self.exemption is None
            and self.score.value >= self.enforce_min_score
        )

    @property
    def why_not_enforced(self) -> str | None:
        if self.enforce:
            return None
        if not self.present:
            return "rule no longer present"
        if self.exemption is not None:
            return f"exempt: {self.exemption.label}"
        if self.mode != "enforce":
            return f"mode is {self.mode}"
        return f"score {self.score.value} below enforce threshold {self.enforce_min_score}"


@dataclass(frozen=True, slots=True)
class GroupDecision:
    ctx: GroupContext
    judged: tuple[Rule, ...]
    violations: tuple[Violation, ...]

    @property
    def to_revoke(self) -> tuple[Rule, ...]:
        # By rule id where known: two rules of identical content are two revokes.
        seen: dict[Any, Rule] = {}
        for v in self.violations:
            if v.enforce:
                seen.setdefault(v.rule.rule_id or v.rule.key, v.rule)
        return tuple(seen.values())

    @property
    def absent_violating(self) -> tuple[Rule, ...]:
        seen: dict[Any, Rule] = {}
        for v in self.violations:
            if not v.present:
                seen.setdefault(v.rule.key, v.rule)
        return tuple(seen.values())

    def by_control(self) -> dict[str, list[Violation]]:
        out: dict[str, list[Violation]] = {}
        for v in self.violations:
            out.setdefault(v.control.id, []).append(v)
        return out


def _resolve(record_rule: Rule, current: dict[Any, Rule]) -> tuple[Rule, bool]:
    """Match a rule the event added to the group's current rules, by content. The current
    copy wins (it is AWS's canonical form); the record's rule id fills a gap."""
    directions = (record_rule.egress,) if record_rule.egress is not None else (False, True)
    for egress in directions:
        found = current.get(replace(record_rule, egress=egress).key)
        if found is not None:
            return found.with_id(found.rule_id or record_rule.rule_id, egress), True
    return record_rule, False


def decide(
    change: GroupChange,
    ctx: GroupContext,
    policy: Policy,
    *,
    principal_arn: str | None = None,
    today: dt.date | None = None,
    controls: tuple[Control, ...] = SG_CONTROLS,
) -> GroupDecision:
    current = {r.key: r for r in ctx.current_rules}
    if change.whole_group:
        judged = [(r, True) for r in ctx.current_rules]
    else:
        judged = [_resolve(r, current) if ctx.exists else (r, False) for r in change.rules]
    violations: list[Violation] = []
    for rule, present in judged:
        if rule.egress is None:
            continue  # direction unknown and not found: nothing can be proven about it
        for control in controls:
            mode = policy.mode(control.id)
            if mode == "off" or not control.matches(rule, ctx, policy):
                continue
            score = score_rule(rule, ctx, policy)
            exemption = policy.exemption_for(
                control.id,
                group_id=ctx.group_id,
                vpc_id=ctx.vpc_id,
                tags=ctx.tags,
                principal_arn=principal_arn,
                today=today,
            )
            violations.append(
                Violation(
                    control=control,
                    rule=rule,
                    score=score,
                    severity=policy.thresholds.severity_of(score.value),
                    mode=mode,
                    exemption=exemption,
                    present=present,
                    enforce_min_score=policy.thresholds.enforce_min_score,
                )
            )
    return GroupDecision(ctx, tuple(r for r, _ in judged), tuple(violations))
