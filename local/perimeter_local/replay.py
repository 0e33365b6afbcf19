"""``perimeter replay``: what Perimeter would have done over a CloudTrail history.

Every record of the history is routed with the template's EventBridge patterns
(``replay_route``); each routed call is judged by the function's own evaluation from what the
record states (``replay_judge``), in dry run: nothing is read from or written to AWS beyond
reading the history itself. The tally answers the question a team asks before turning
``enforce`` on: per control, how many events, how many would have been remediated, by whom,
on which resources, and which exemptions would silence the known-good ones (a policy snippet
valid against ``policy/schema.json``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import yaml
from perimeter.core.events import MalformedEvent, parse_event
from perimeter.policy import Policy

from perimeter_local.replay_judge import Hit, judge_record
from perimeter_local.replay_read import ReadStats
from perimeter_local.replay_route import Router

TOP = 20
EXEMPTION_DAYS = 90


def principal_pattern(arn: str | None) -> str | None:
    """The exemption glob for an actor: an assumed role's sessions are one actor."""
    if not arn:
        return None
    m = re.fullmatch(r"(arn:[^:]+:sts::[^:]*:assumed-role/[^/]+)/.*", arn)
    return f"{m.group(1)}/*" if m else arn


@dataclass
class ControlTally:
    mode: str = "off"
    events: int = 0
    findings: int = 0
    remediate_events: int = 0
    remediate: int = 0
    exempt: int = 0
    below_threshold: int = 0
    actors: Counter[str] = field(default_factory=Counter)
    resources: Counter[str] = field(default_factory=Counter)
    #: actor pattern -> would-remediate findings (what an exemption on it would silence)
    remediate_by_actor: Counter[str] = field(default_factory=Counter)


@dataclass
class FunctionTally:
    routed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class Tally:
    records: int = 0
    routed: int = 0
    unparsable: int = 0
    #: routed calls made by Perimeter's own roles: its remediation, ignored as the loop guard does
    own_role: int = 0
    functions: dict[str, FunctionTally] = field(default_factory=dict)
    controls: dict[str, ControlTally] = field(default_factory=dict)
    undetermined: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)

    def add(self, function: str, actor: str | None, hits: Sequence[Hit], outcome: str) -> None:
        f = self.functions.setdefault(function, FunctionTally())
        f.routed += 1
        f.outcomes[outcome] += 1
        actor_key = principal_pattern(actor) or "unknown"
        seen: set[str] = set()
        remediating: set[str] = set()
        for h in hits:
            c = self.controls.setdefault(h.control, ControlTally(mode=h.mode))
            c.findings += 1
            c.resources[h.resource] += 1
            if h.remediate:
                c.remediate += 1
                c.remediate_by_actor[actor_key] += 1
                remediating.add(h.control)
            elif h.exemption:
                c.exempt += 1
            elif h.mode == "enforce":
                c.below_threshold += 1
            if h.control not in seen:
                seen.add(h.control)
                c.events += 1
                c.actors[actor_key] += 1
        for control in remediating:
            self.controls[control].remediate_events += 1


@dataclass
class Progress:
    """A one-line counter on stderr, only when stderr is a terminal."""

    stream: TextIO = sys.stderr
    every: float = 0.5
    _last: float = 0.0
    _start: float = field(default_factory=time.monotonic)

    @property
    def enabled(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def tick(self, tally: Tally, stats: ReadStats, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.every:
            return
        self._last = now
        rate = tally.records / max(now - self._start, 1e-9)
        self.stream.write(
            f"\r{tally.records:,} records, {tally.routed:,} routed, {stats.files:,} files, "
            f"{rate:,.0f} records/s" + ("\n" if final else "")
        )
        self.stream.flush()


def replay(
    records: Iterable[Any],
    router: Router,
    policy: Policy,
    *,
    today: dt.date | None = None,
    stats: ReadStats | None = None,
    progress: Progress | None = None,
    self_roles: re.Pattern[str] | None = None,
) -> Tally:
    """Route and judge every record; nothing is read from or written to AWS here."""
    day = today or dt.datetime.now(dt.UTC).date()
    tally = Tally()
    stats = stats or ReadStats()
    show = progress if progress is not None and progress.enabled else None
    for record in records:
        tally.records += 1
        if show is not None and not tally.records & 0x3FFF:
            show.tick(tally, stats)
        if not isinstance(record, Mapping):
            tally.unparsable += 1
            continue
        envelope, routes = router.routes_for(record)
        if not routes:
            continue
        tally.routed += 1
        try:
            call = parse_event(envelope)
        except MalformedEvent as exc:
            for route in routes:
                tally.add(route.function, None, (), "malformed")
            tally.malformed[str(exc)] += 1
            continue
        if self_roles is not None and call.actor.role_name and self_roles.fullmatch(call.actor.role_name):
            tally.own_role += 1
            continue
        for function in dict.fromkeys(r.function for r in routes):
            verdict = judge_record(function, call, policy, day)
            tally.add(function, call.actor.arn, verdict.hits, verdict.outcome)
            for reason in verdict.undetermined:
                tally.undetermined[reason] += 1
            if verdict.malformed:
                tally.malformed[verdict.malformed] += 1
    if show is not None:
        show.tick(tally, stats, final=True)
    return tally


# --- exemptions --------------------------------------------------------------------------


def exemption_snippet(
    tally: Tally, *, known_good: Sequence[str] = (), today: dt.date | None = None, limit: int = TOP
) -> tuple[list[dict[str, Any]], int]:
    """Exemptions by principal that would silence the would-be remediations of the chosen
    actors, and how many remediations they silence. ``known_good`` are ARN globs; without
    them the most frequent remediated actors are offered, for a person to keep or strike.
    """
    day = today or dt.datetime.now(dt.UTC).date()
    per_actor: dict[str, dict[str, int]] = {}
    for control_id, c in tally.controls.items():
        for actor, n in c.remediate_by_actor.items():
            per_actor.setdefault(actor, {})[control_id] = n
    chosen = [
        a
        for a in per_actor
        if a != "unknown" and (not known_good or any(fnmatch.fnmatchcase(a, g) for g in known_good))
    ]
    chosen.sort(key=lambda a: (-sum(per_actor[a].values()), a))
    if not known_good:
        chosen = chosen[:limit]
    out = []
    silenced = 0
    for actor in chosen:
        controls = per_actor[actor]
        n = sum(controls.values())
        silenced += n
        out.append(
            {
                "principal": actor,
                "controls": sorted(controls),
                "reason": f"known-good per replay: {n} would-be remediation(s) ({_counts(controls)})",
                "expires": (day + dt.timedelta(days=EXEMPTION_DAYS)).isoformat(),
            }
        )
    return out, silenced


def _counts(by_control: Mapping[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in sorted(by_control.items()))


def snippet_yaml(exemptions: Sequence[Mapping[str, Any]]) -> str:
    if not exemptions:
        return "exemptions: []\n"
    return yaml.safe_dump({"exemptions": list(exemptions)}, sort_keys=False, width=1000)


# --- report ------------------------------------------------------------------------------


def to_json(
    tally: Tally,
    *,
    source: str,
    seconds: float,
    stats: ReadStats,
    exemptions: Sequence[Mapping[str, Any]],
    silenced: int,
) -> dict[str, Any]:
    return {
        "source": source,
        "judged": "the delta each record states (history carries no account state)",
        "records": tally.records,
        "routed": tally.routed,
        "unparsable": tally.unparsable,
        "own_role": tally.own_role,
        "files": stats.files,
        "seconds": round(seconds, 3),
        "functions": {
            name: {"routed": f.routed, **dict(f.outcomes)} for name, f in sorted(tally.functions.items())
        },
        "controls": {
            cid: {
                "mode": c.mode,
                "events": c.events,
                "findings": c.findings,
                "would_remediate_events": c.remediate_events,
                "would_remediate": c.remediate,
                "exempt": c.exempt,
                "enforce_below_threshold": c.below_threshold,
                "top_actors": c.actors.most_common(TOP),
                "top_resources": c.resources.most_common(TOP),
            }
            for cid, c in sorted(tally.controls.items())
        },
        "undetermined": dict(tally.undetermined.most_common()),
        "malformed": dict(tally.malformed.most_common()),
        "exemption_snippet": {"exemptions": list(exemptions), "silences": silenced},
    }


def render(report: Mapping[str, Any], *, top: int = TOP) -> str:
    """The human report. ``top`` limits the actors and resources printed per control (the
    JSON output always carries the top 20)."""
    lines = [
        f"Replay of {report['source']}: {report['records']:,} records in {report['files']:,} file(s), "
        f"{report['routed']:,} routed, {report['seconds']:.1f} s "
        f"({report['records'] / max(report['seconds'], 1e-9):,.0f} records/s). Dry run: nothing was changed.",
        "Judged: the delta each record states (the rules it added, the policy it put, the config it named);",
        "history carries no account state, so what needs it is counted as undetermined.",
        f"Ignored: {report['own_role']:,} routed call(s) by Perimeter's own roles, "
        f"{report['unparsable']:,} unparsable record(s).",
        "",
        f"{'function':<24}{'routed':>9}{'violating':>11}{'clean':>9}{'undetermined':>14}{'malformed':>11}",
    ]
    for name, f in report["functions"].items():
        lines.append(
            f"{name:<24}{f['routed']:>9,}{f.get('violating', 0):>11,}{f.get('clean', 0):>9,}"
            f"{f.get('undetermined', 0):>14,}{f.get('malformed', 0):>11,}"
        )
    lines += [
        "",
        f"{'control':<12}{'mode':<9}{'events':>9}{'findings':>10}{'would remediate':>17}{'exempt':>8}"
        f"{'below threshold':>17}",
    ]
    for cid, c in report["controls"].items():
        lines.append(
            f"{cid:<12}{c['mode']:<9}{c['events']:>9,}{c['findings']:>10,}"
            f"{c['would_remediate_events']:>8,} events{c['exempt']:>8,}{c['enforce_below_threshold']:>17,}"
        )
        actors = ", ".join(f"{a} ({n})" for a, n in c["top_actors"][:top])
        resources = ", ".join(f"{r} ({n})" for r, n in c["top_resources"][:top])
        lines.append(f"    actors: {actors}")
        lines.append(f"    resources: {resources}")
    if report["undetermined"]:
        lines += ["", "Undetermined (needs account state):"]
        lines += [f"  {n:>9,}  {why}" for why, n in list(report["undetermined"].items())[:10]]
    if report["malformed"]:
        lines += ["", "Malformed (the evaluation rejected the record):"]
        lines += [f"  {n:>9,}  {why}" for why, n in list(report["malformed"].items())[:10]]
    snippet = report["exemption_snippet"]
    lines += [
        "",
        f"Exemptions that would silence {snippet['silences']:,} would-be remediation(s) "
        "(policy YAML; keep only the known-good, give each a real reason):",
        snippet_yaml(snippet["exemptions"]).rstrip(),
    ]
    return "\n".join(lines)


# --- SQL for history too large for one machine ---------------------------------------------


def lake_sql(
    router: Router,
    *,
    store: str = "<event-data-store-id>",
    start: str = "",
    end: str = "",
    athena_table: str | None = None,
) -> str:
    """The query selecting exactly the calls the template routes (a superset when several
    sources share names: replay routes again), in the columns ``replay_read.record_from_row``
    reads. CloudTrail Lake by default; with ``athena_table``, Athena's CloudTrail table, where
    ``requestparameters`` and ``responseelements`` already are JSON text."""
    names = ", ".join(f"'{n}'" for n in sorted({name for _, name in router.event_keys}))
    sources = ", ".join(f"'{s}'" for s in sorted({source for source, _ in router.event_keys}))
    if athena_table:
        nested = ["       requestparameters, responseelements"]
        table = athena_table
    else:
        nested = [
            "       json_format(CAST(requestparameters AS JSON)) AS requestparameters,",
            "       json_format(CAST(responseelements AS JSON)) AS responseelements",
        ]
        table = store
    when = [f"  AND eventtime >= '{start}'"] if start else []
    when += [f"  AND eventtime < '{end}'"] if end else []
    return "\n".join(
        [
            "SELECT eventid, eventtime, eventsource, eventname, awsregion, recipientaccountid, errorcode,",
            "       useridentity.arn AS useridentity_arn, useridentity.type AS useridentity_type,",
            "       useridentity.accountid AS useridentity_accountid,",
            "       useridentity.principalid AS useridentity_principalid,",
            "       useridentity.invokedby AS useridentity_invokedby,",
            *nested,
            f"FROM {table}",
            f"WHERE eventsource IN ({sources})",
            f"  AND eventname IN ({names})",
            "  AND errorcode IS NULL",
            *when,
        ]
    )
