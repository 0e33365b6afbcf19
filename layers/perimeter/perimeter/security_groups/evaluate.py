"""Judge a security group's whole current state against the policy (pure).

``evaluate_group`` is *the* evaluation of a security group, for the event path and the
sweep alike: it takes the group as AWS holds it now (``GroupContext.current_rules``, every
rule DescribeSecurityGroups returned, plus the prefix lists they name) and returns a
``GroupDecision``: every violation of every SG control, with its score, severity, effective
mode and exemption, and the exact rules ``enforce`` may revoke (present, offending, at or
above the threshold, not exempt). An event only decides *which* groups to look at; what the
event added (``added``) only lends rule ids to the current rules (DescribeSecurityGroups
has none), marks which rules the actor made (a principal exemption covers those alone) and,
when already gone again, is reported as such.

``decide(change, ctx, policy)`` is the same evaluation for callers holding a ``GroupChange``.

Cost: one pass over the rules (``exposure.facts_of``), a few microseconds each; nothing
here grows faster than the group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from perimeter.core.controls import SG_CONTROLS, Control
from perimeter.core.rules import Rule
from perimeter.core.scoring import Score, score_facts
from perimeter.policy import Exemption, Policy
from perimeter.security_groups.changes import GroupChange
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.exposure import GroupFacts, RuleFacts, facts_of


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
    #: the event being handled added or changed this rule (False: it was there already)
    added: bool = False

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
    #: the SG controls this evaluation judged (mode not ``off``): each has a finding, FAILED
    #: when it has a present violation here, PASSED otherwise
    controls: tuple[Control, ...] = ()

    @property
    def to_revoke(self) -> tuple[Rule, ...]:
        seen: dict[int, Rule] = {}
        for v in self.violations:
            if v.enforce:
                seen.setdefault(id(v.rule), v.rule)
        return tuple(seen.values())

    @property
    def absent_violating(self) -> tuple[Rule, ...]:
        seen: dict[Any, Rule] = {}
        for v in self.violations:
            if not v.present:
                seen.setdefault(v.rule.key, v.rule)
        return tuple(seen.values())

    @property
    def failing(self) -> frozenset[str]:
        """Controls violated by a rule the group holds now."""
        return frozenset(v.control.id for v in self.violations if v.present)

    @property
    def passing(self) -> tuple[str, ...]:
        """Controls judged and not violated by any current rule."""
        failing = self.failing
        return tuple(c.id for c in self.controls if c.id not in failing)

    def by_control(self) -> dict[str, list[Violation]]:
        out: dict[str, list[Violation]] = {}
        for v in self.violations:
            out.setdefault(v.control.id, []).append(v)
        return out


def _ids_from(added: Iterable[Rule]) -> dict[Any, Rule]:
    """Event rules by content key, in both directions when the record does not say."""
    out: dict[Any, Rule] = {}
    for r in added:
        if r.egress is None:
            out.setdefault(replace(r, egress=False).key, r)
            out.setdefault(replace(r, egress=True).key, r)
        else:
            out.setdefault(r.key, r)
    return out


def evaluate_group(
    ctx: GroupContext,
    policy: Policy,
    *,
    added: Iterable[Rule] = (),
    principal_arn: str | None = None,
    today: dt.date | None = None,
    controls: tuple[Control, ...] = SG_CONTROLS,
) -> GroupDecision:
    """Evaluate a security group's whole current state (the sweep's and the event path's one
    evaluation).

    Parameters:
        ctx: the group as read now; ``exists=False`` judges nothing (every control passes).
        policy: the validated policy (modes, thresholds, exemptions).
        added: rules the event being handled added or changed: they lend their rule ids to
            the matching current rules, a principal exemption covers them alone, and any no
            longer present are reported as gone (never acted on).
        principal_arn: the event's actor, for principal exemptions.
        today: the date exemptions expire against (default: today, UTC).
        controls: the controls to judge (default: PER-SG-1..4).

    Example:
        >>> decision = evaluate_group(ctx, policy)          # doctest: +SKIP
        >>> [r.rule_id for r in decision.to_revoke]          # doctest: +SKIP
    """
    active = tuple(c for c in controls if policy.mode(c.id) != "off")
    if not ctx.exists:
        return GroupDecision(ctx, (), (), active)
    event_rules = _ids_from(added)
    current: list[Rule] = []
    is_added: list[bool] = []
    if event_rules:
        found: set[int] = set()
        for r in ctx.current_rules:
            hit = event_rules.get(r.key)
            if hit is not None:
                found.add(id(hit))
                if not r.rule_id and hit.rule_id:
                    r = r.with_id(hit.rule_id)
            current.append(r)
            is_added.append(hit is not None)
        gone = [r for r in dict.fromkeys(event_rules.values()) if id(r) not in found and r.egress is not None]
    else:
        current = list(ctx.current_rules)
        is_added = [False] * len(current)
        gone = []
    g = GroupFacts(ctx, policy)
    violations: list[Violation] = []
    _judge(facts_of(current, g), is_added, True, g, active, policy, principal_arn, today, violations)
    if gone:
        # Judged alone, never acted on: they are reported as already gone.
        gone_facts = facts_of(gone, g)
        _judge(gone_facts, [True] * len(gone), False, g, active, policy, principal_arn, today, violations)
    return GroupDecision(ctx, tuple(current), tuple(violations), active)


def _judge(
    facts: list[RuleFacts],
    is_added: list[bool],
    present: bool,
    g: GroupFacts,
    controls: tuple[Control, ...],
    policy: Policy,
    principal_arn: str | None,
    today: dt.date | None,
    out: list[Violation],
) -> None:
    ctx = g.ctx
    plan = []
    # The undo's exemptions of single rules (by content) are looked up per rule; the rest
    # (policy file, tag, the undo's whole-resource ones) once per control.
    extra = ctx.exemptions
    whole = tuple(e for e in extra if not e.rule_scoped)
    scoped = tuple(e for e in extra if e.rule_scoped)
    for c in controls:
        common = dict(group_id=ctx.group_id, vpc_id=ctx.vpc_id, tags=ctx.tags, today=today, extra=whole)
        by_actor = policy.exemption_for(c.id, principal_arn=principal_arn, **common)  # type: ignore[arg-type]
        standing = policy.exemption_for(c.id, **common) if principal_arn else by_actor  # type: ignore[arg-type]
        plan.append((c, c.judge, policy.mode(c.id), by_actor, standing))
    enforce_min = policy.thresholds.enforce_min_score
    severity_of = policy.thresholds.severity_of
    severities: dict[int, str] = {}
    for f, added in zip(facts, is_added, strict=True):
        score: Score | None = None
        for c, judge, mode, by_actor, standing in plan:
            hit = judge(f, g) if judge is not None else c.matches(f.rule, ctx, policy)
            if not hit:
                continue
            if score is None:
                score = score_facts(f, g)
            sev = severities.get(score.value)
            if sev is None:
                sev = severities[score.value] = severity_of(score.value)
            ex = by_actor if added else standing
            if ex is None and scoped:
                ex = policy.exemption_for(
                    c.id,
                    group_id=ctx.group_id,
                    vpc_id=ctx.vpc_id,
                    today=today,
                    extra=scoped,
                    rule_key=f.rule.key,
                )
            out.append(Violation(c, f.rule, score, sev, mode, ex, present, enforce_min, added))


def decide(
    change: GroupChange,
    ctx: GroupContext,
    policy: Policy,
    *,
    principal_arn: str | None = None,
    today: dt.date | None = None,
    controls: tuple[Control, ...] = SG_CONTROLS,
) -> GroupDecision:
    """The group's whole current state judged (``evaluate_group``), with the change's rules
    as what the event added."""
    return evaluate_group(
        ctx, policy, added=change.rules, principal_arn=principal_arn, today=today, controls=controls
    )
