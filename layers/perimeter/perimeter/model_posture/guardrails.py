"""PER-GR-1 judged (pure): is there a guardrail that blocks prompt attacks at HIGH strength
where Bedrock serves a model, was one deleted or weakened, and is it actually required.

"Weakened" is measured, not guessed: ``UpdateGuardrail`` changes the DRAFT, so the DRAFT is
compared with the latest published version (what applications pinned), filter by filter
(strength NONE < LOW < MEDIUM < HIGH) and policy by policy (topics, words, PII, grounding).
Whether the guardrail is *required* is a separate fact: an account- or organization-level
enforced guardrail configuration applies it to every invocation; otherwise only IAM policies
with a ``bedrock:GuardrailIdentifier`` condition can force callers to use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perimeter.core.arns import arn
from perimeter.posture.controls import Issue, arn_resource

STRENGTHS = ("NONE", "LOW", "MEDIUM", "HIGH")
POLICIES = (
    ("topicPolicy", "denied topics"),
    ("wordPolicy", "word filters"),
    ("sensitiveInformationPolicy", "sensitive-information filters"),
    ("contextualGroundingPolicy", "contextual grounding"),
)


@dataclass(frozen=True, slots=True)
class Guardrail:
    guardrail_id: str
    arn: str
    name: str
    version: str
    #: filter type -> (input strength, output strength); a disabled direction counts as NONE
    filters: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    policies: frozenset[str] = frozenset()

    @property
    def prompt_attack_input(self) -> str:
        return self.filters.get("PROMPT_ATTACK", ("NONE", "NONE"))[0]

    @property
    def blocks_prompt_attacks(self) -> bool:
        return self.prompt_attack_input == "HIGH"

    @property
    def label(self) -> str:
        return f"{self.name or self.guardrail_id} ({self.guardrail_id} v{self.version})"


def guardrail_from_api(g: Mapping[str, Any]) -> Guardrail:
    filters: dict[str, tuple[str, str]] = {}
    for f in (g.get("contentPolicy") or {}).get("filters") or []:
        inp = str(f.get("inputStrength", "NONE")) if f.get("inputEnabled", True) else "NONE"
        out = str(f.get("outputStrength", "NONE")) if f.get("outputEnabled", True) else "NONE"
        filters[str(f.get("type"))] = (inp, out)
    return Guardrail(
        guardrail_id=str(g.get("guardrailId", "")),
        arn=str(g.get("guardrailArn", "")),
        name=str(g.get("name", "")),
        version=str(g.get("version", "DRAFT")),
        filters=filters,
        policies=frozenset(k for k, _ in POLICIES if g.get(k)),
    )


def _rank(strength: str) -> int:
    return STRENGTHS.index(strength) if strength in STRENGTHS else 0


def weakenings(before: Guardrail, after: Guardrail) -> list[str]:
    """What ``after`` protects less than ``before``, in words a reviewer can check."""
    out = []
    for ftype, (b_in, b_out) in sorted(before.filters.items()):
        a_in, a_out = after.filters.get(ftype, ("NONE", "NONE"))
        if _rank(a_in) < _rank(b_in):
            out.append(f"{ftype} input {b_in} -> {a_in}")
        if _rank(a_out) < _rank(b_out):
            out.append(f"{ftype} output {b_out} -> {a_out}")
    for key, words in POLICIES:
        if key in before.policies and key not in after.policies:
            out.append(f"{words} removed")
    return out


@dataclass(frozen=True, slots=True)
class Enforcement:
    """One account- or organization-level enforced guardrail configuration."""

    guardrail_id: str
    version: str
    owner: str
    config_id: str = ""

    def describe(self) -> str:
        return f"{self.owner.lower()}-level enforced guardrail {self.guardrail_id} v{self.version}"


def enforcement_text(enforced: Sequence[Enforcement], strong: Sequence[Guardrail]) -> str:
    strong_ids = {g.guardrail_id for g in strong}
    hits = [e for e in enforced if e.guardrail_id in strong_ids]
    if hits:
        return "Required: " + "; ".join(e.describe() for e in hits) + "."
    if enforced:
        return (
            "Not required: the enforced guardrail configuration(s) ("
            + "; ".join(e.describe() for e in enforced)
            + ") name no guardrail with a HIGH prompt-attack filter."
        )
    return (
        "Not required: no account- or organization-level enforced guardrail configuration; only IAM "
        "policies with a bedrock:GuardrailIdentifier condition can force callers to use one."
    )


def account_resource(account: str, region: str) -> Any:
    """PER-GR-1's account-level requirement has one finding per account and region."""
    return arn_resource(
        "Other",
        arn("bedrock", region, account, "guardrail/*"),
        f"bedrock-guardrails-{region}",
        {"Account": account, "Region": region},
    )


def missing_guardrail_issue(
    *,
    account: str,
    region: str,
    served: Sequence[str],
    guardrails: Sequence[Guardrail],
    enforced: Sequence[Enforcement],
    chain: tuple[str, ...] = (),
) -> Issue | None:
    """No guardrail with a HIGH prompt-attack input filter while ``served`` names models."""
    strong = [g for g in guardrails if g.blocks_prompt_attacks]
    if strong or not served:
        return None
    weak = ", ".join(f"{g.label}: PROMPT_ATTACK input {g.prompt_attack_input}" for g in guardrails) or "none"
    return Issue(
        control_id="PER-GR-1",
        resource=account_resource(account, region),
        score=70,
        reasons=("Bedrock serves a model with no prompt-attack guardrail (+70)",),
        summary=(
            f"Bedrock serves {', '.join(served)} in {account}/{region} but no guardrail has a HIGH "
            f"prompt-attack input filter (guardrails: {weak}). {enforcement_text(enforced, strong)}"
        ),
        chain=chain,
        fix=(
            "aws bedrock create-guardrail with contentPolicyConfig PROMPT_ATTACK inputStrength HIGH "
            "(outputStrength NONE), create-guardrail-version, then put-enforced-guardrail-configuration "
            "or add a bedrock:GuardrailIdentifier condition to the invoke policies."
        ),
        evidence={"perimeter/guardrail_enforcement": enforcement_text(enforced, strong)},
    )


def deleted_issue(
    *,
    account: str,
    region: str,
    guardrail_id: str,
    version: str | None,
    remaining: Sequence[Guardrail],
    enforced: Sequence[Enforcement],
    served: Sequence[str],
) -> Issue:
    strong = [g for g in remaining if g.blocks_prompt_attacks]
    what = f"guardrail {guardrail_id}" + (f" version {version}" if version else " (all versions)")
    left = (
        "Guardrails with a HIGH prompt-attack filter remain: " + ", ".join(g.label for g in strong) + "."
        if strong
        else "No guardrail with a HIGH prompt-attack filter remains."
    )
    used = f" Bedrock serves {', '.join(served)}." if served else ""
    guardrail_arn = arn("bedrock", region, account, f"guardrail/{guardrail_id}")
    return Issue(
        control_id="PER-GR-1",
        resource=arn_resource("Other", guardrail_arn, guardrail_id, {"GuardrailId": guardrail_id}),
        score=55 if strong else 75,
        reasons=(
            "a guardrail was deleted (+55)",
            *(() if strong else ("no prompt-attack guardrail remains (+20)",)),
        ),
        summary=f"{what} was deleted. {left}{used} {enforcement_text(enforced, strong)}",
        chain=(f"guardrail {guardrail_id}",),
        fix=(
            "Recreate the guardrail (PROMPT_ATTACK inputStrength HIGH) from your IaC, publish a version "
            "and point the enforced configuration / invoke policies at it; find who deleted it in CloudTrail."
        ),
        evidence={"perimeter/changed": f"deleted {what}"},
    )


def weakened_issue(
    *,
    account: str,
    region: str,
    before: Guardrail,
    after: Guardrail,
    enforced: Sequence[Enforcement],
) -> Issue | None:
    changes = weakenings(before, after)
    lost_high = before.blocks_prompt_attacks and not after.blocks_prompt_attacks
    if not changes:
        return None
    return Issue(
        control_id="PER-GR-1",
        resource=arn_resource(
            "Other", after.arn or before.arn, after.guardrail_id, {"GuardrailId": after.guardrail_id}
        ),
        score=70 if lost_high else 50,
        reasons=(
            "a guardrail was weakened (+50)",
            *(("it no longer blocks prompt attacks at HIGH (+20)",) if lost_high else ()),
        ),
        summary=(
            f"Guardrail {after.label} was weakened compared with version {before.version}: "
            + "; ".join(changes)
            + f". {enforcement_text(enforced, [after] if after.blocks_prompt_attacks else [])}"
        ),
        chain=(f"guardrail {after.guardrail_id}", f"version {before.version} -> {after.version}"),
        fix=(
            f"Restore the filters of version {before.version} on the DRAFT (update-guardrail) and do not "
            "publish the weakened DRAFT as a version."
        ),
        evidence={"perimeter/changed": "; ".join(changes)},
    )


def enforcement_resource(account: str, region: str) -> Any:
    """The account's enforced guardrail configurations, judged together (one finding per account
    and region): does one of them apply a HIGH prompt-attack guardrail to every invocation?"""
    return arn_resource(
        "Other",
        arn("bedrock", region, account, "enforced-guardrail-configuration/*"),
        f"bedrock-enforced-guardrails-{region}",
        {"Account": account, "Region": region},
    )


def enforcement_issue(
    *,
    account: str,
    region: str,
    applied: Sequence[tuple[Enforcement, Guardrail | None]],
    served: Sequence[str],
    deleted: str | None = None,
) -> Issue | None:
    """After an enforced configuration was put or deleted: while Bedrock serves a model, no
    enforced configuration applies a guardrail (at the version it names) whose prompt-attack
    input filter is HIGH. ``applied`` pairs each configuration with its guardrail as read at that
    version (``None``: the guardrail or version no longer exists)."""
    if not served or any(g is not None and g.blocks_prompt_attacks for _, g in applied):
        return None
    if deleted is None and not applied:
        return None
    weak = "; ".join(
        f"{e.describe()}: "
        + (f"PROMPT_ATTACK input {g.prompt_attack_input}" if g is not None else "guardrail version not found")
        for e, g in applied
    )
    what = (
        f"Enforced guardrail configuration {deleted} was deleted"
        if deleted is not None
        else "The enforced guardrail configuration(s) apply no guardrail with a HIGH prompt-attack filter"
    )
    return Issue(
        control_id="PER-GR-1",
        resource=enforcement_resource(account, region),
        score=60,
        reasons=("no enforced guardrail blocks prompt attacks on every invocation (+60)",),
        summary=(
            f"{what}: while Bedrock serves {', '.join(served)}, no account-level enforced configuration "
            f"applies a HIGH prompt-attack guardrail (remaining: {weak or 'none'})."
        ),
        chain=(f"enforced guardrail configuration {deleted or ', '.join(e.config_id for e, _ in applied)}",),
        fix=(
            "aws bedrock put-enforced-guardrail-configuration --guardrail-inference-config "
            "guardrailIdentifier=<guardrail with PROMPT_ATTACK inputStrength HIGH>,"
            "guardrailVersion=<published version>"
        ),
        evidence={"perimeter/guardrail_enforcement": weak or "none"},
    )
