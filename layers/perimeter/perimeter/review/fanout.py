"""The organization's sweep: one sweep per (account, region), each its own Lambda invocation.

In organization mode the schedule invokes SweepFunction with the schedule's event; it plans the
pairs (``organizations:ListAccounts``, ACTIVE accounts, times ``PERIMETER_SWEEP_REGIONS``) and
invokes itself asynchronously once per pair (``InvocationType=Event``) with a ``sweep-pair``
event. Lambda's own queue, retries and OnFailure destination (the dead-letter queue) carry each
pair; pairs run concurrently up to the account's Lambda concurrency, so the organization sweeps
in about the time of its slowest (account, region), and one pair failing fails only itself.
A pair's invocation sweeps that region of that account through the member role
(``perimeter.core.accounts.runtime_of``), with the same code as a single-account sweep.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

PAIR_KIND = "sweep-pair"
#: concurrent Invoke calls while dispatching (each is one short HTTPS request)
DISPATCH_WORKERS = 8


@dataclass(frozen=True, slots=True)
class Pair:
    account: str
    region: str

    def event(self, parent_id: str) -> dict[str, Any]:
        """The payload a pair's invocation receives (well under async invoke's 256 KB)."""
        return {
            "perimeter": PAIR_KIND,
            "account": self.account,
            "region": self.region,
            # sweep ids stay unique per pair: findings and audit records name them
            "id": f"{parent_id}-{self.account}-{self.region}",
        }


def is_pair(event: Any) -> bool:
    return isinstance(event, Mapping) and event.get("perimeter") == PAIR_KIND


def parse_pair(event: Mapping[str, Any]) -> Pair:
    account, region = event.get("account"), event.get("region")
    if not (isinstance(account, str) and account.isdigit() and len(account) == 12):
        raise ValueError(f"sweep-pair event: account must be a 12-digit id, got {account!r}")
    if not (isinstance(region, str) and region):
        raise ValueError(f"sweep-pair event: region must be a region name, got {region!r}")
    return Pair(account, region)


def regions_from_env(home_region: str, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``PERIMETER_SWEEP_REGIONS`` (comma-separated), or the security stack's own region."""
    e = os.environ if env is None else env
    listed = [r.strip() for r in (e.get("PERIMETER_SWEEP_REGIONS") or "").split(",") if r.strip()]
    return tuple(dict.fromkeys(listed)) or (home_region,)


def active_accounts(organizations: Any) -> list[str]:
    """Every ACTIVE account of the organization (``ListAccounts``, every page)."""
    out: list[str] = []
    token: str | None = None
    while True:
        resp = organizations.list_accounts(**({"NextToken": token} if token else {}))
        out += [str(a["Id"]) for a in resp.get("Accounts", []) if a.get("Status", "ACTIVE") == "ACTIVE"]
        token = resp.get("NextToken")
        if not token:
            return out


def plan(accounts: Iterable[str], regions: Sequence[str]) -> list[Pair]:
    """Accounts x regions, each pair once, in a stable order."""
    seen = dict.fromkeys(accounts)
    return [Pair(a, r) for a in sorted(seen) for r in regions]


def dispatch(
    pairs: Sequence[Pair], invoke: Callable[..., Any], function: str, parent_id: str
) -> dict[str, Any]:
    """One asynchronous invocation per pair. A refused invocation is raised after every pair was
    tried (the schedule's retry then dispatches again; a pair already swept is swept again,
    which is safe: every step of a sweep is)."""

    def one(pair: Pair) -> Exception | None:
        try:
            resp = invoke(
                FunctionName=function,
                InvocationType="Event",
                Payload=json.dumps(pair.event(parent_id)).encode(),
            )
        except Exception as exc:  # noqa: BLE001 - collected and raised below
            return exc
        status = int(resp.get("StatusCode", 0))
        return None if status == 202 else RuntimeError(f"Invoke answered {status} for {pair}")

    with ThreadPoolExecutor(max_workers=DISPATCH_WORKERS) as pool:
        errors = list(pool.map(one, pairs))
    failed = [(p, e) for p, e in zip(pairs, errors, strict=True) if e is not None]
    if failed:
        first = failed[0]
        raise RuntimeError(
            f"{len(failed)} of {len(pairs)} sweep invocations failed; first {first[0]}: {first[1]}"
        ) from first[1]
    return {"status": "dispatched", "pairs": len(pairs), "function": function}


def pair_runtime(event: Mapping[str, Any], home: Any) -> Any:
    """The runtime of a ``sweep-pair`` event's (account, region)."""
    from perimeter.core.accounts import OrgSettings, runtime_of

    org = OrgSettings.from_env()
    if org is None:
        raise ValueError("a sweep-pair event reached a stack that is not in organization mode")
    pair = parse_pair(event)
    return runtime_of(home, org, pair.account, pair.region, str(event.get("id") or "") or None)


def fan_out(event: Mapping[str, Any] | None, home: Any, context: Any = None) -> dict[str, Any]:
    """The scheduled sweep in organization mode: plan the pairs and invoke one sweep each."""
    function = getattr(context, "invoked_function_arn", None) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not function:
        raise ValueError("the fan-out needs the function's own name (AWS_LAMBDA_FUNCTION_NAME)")
    pairs = plan(active_accounts(home.client("organizations")), regions_from_env(home.settings.region))
    parent = str((event or {}).get("id") or "sweep")
    parent = parent if parent.startswith("sweep-") else f"sweep-{parent}"
    return dispatch(pairs, home.client("lambda").invoke, function, parent)
