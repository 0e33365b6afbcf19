"""At most once per CloudTrail event id, with the claim riding on the first write.

EventBridge delivers at least once, so the acting stage must run once per event id. Powertools'
idempotency does this with a claim (PutItem) before the stage and a completion (UpdateItem)
after it: two sequential round trips of their own, one of them between the read and the revoke,
where the group is still open. Here the claim is taken lazily by the stage's first write:

- a write-ahead audit record is written in ONE ``TransactWriteItems`` with the claim (the claim's
  condition fails the whole transaction on a duplicate, so a duplicate writes nothing);
- a stage whose first write is the report (detect only) claims with a conditional PutItem;
- the claim may carry ``checks`` (``ConditionCheck`` items, after the claim and its puts): the
  SgGuard stage checks that no undo exemption item exists for its violations instead of reading
  them first. The claim stays the first item, so a duplicate is still told by
  ``CancellationReasons[0]``; a failed check alone raises ``CheckFailed`` having written nothing
  (the stage then reads, decides again and claims without checks);
- the completion (a PutItem of the whole record, on condition the claim is still ours) is one of
  the report's independent writes (``perimeter.core.publish`` runs it beside
  the finding import and the notification), and a failure of any of them releases the claim, so
  Lambda's retry runs the stage again and nothing is lost;
- the release records which parts of the report went out (``sent``: ``findings``, ``note``):
  a record RELEASED with parts sent is not claimable by the usual condition, so the retry's claim
  fails, reads it (the duplicate path's read), takes it over and learns what not to send again.
  Nothing changes on the way that succeeds: the extra read and write are the failure's.

The record keeps Powertools' attribute names and meaning (``id``, ``status`` INPROGRESS or
COMPLETED — or RELEASED, Perimeter's own: a failed attempt's parts sent, in ``sent`` —,
``expiration`` in epoch seconds — the table's TTL — ``in_progress_expiration`` in
epoch milliseconds, ``data`` the JSON result returned to a duplicate), so the table and its TTL
are unchanged. Only the stage's writes go through here: nothing is claimed for a compliant event.
"""

from __future__ import annotations

import contextvars
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

INPROGRESS, COMPLETED, RELEASED = "INPROGRESS", "COMPLETED", "RELEASED"
_CLAIMABLE = (
    "attribute_not_exists(#id) OR #expiration < :now OR "
    "(#status = :inprogress AND attribute_exists(#ipe) AND #ipe < :now_ms)"
)
#: taking over a released claim, as read (another retry that got there first wins)
_RETAKE = "#status = :released AND #claim = :was"

_current: contextvars.ContextVar[Claim | None] = contextvars.ContextVar("perimeter_claim", default=None)


class EventInProgress(RuntimeError):
    """Another invocation holds this event's claim: fail, and let Lambda retry later."""


class CheckFailed(Exception):  # a control-flow signal, not an error
    """A ``ConditionCheck`` the claim carried failed: an item it checks the absence of exists
    (an undo exemption). The transaction wrote nothing; the checks are dropped, so the caller
    reads what they stood for, decides again and claims again."""


class AlreadyDone(Exception):  # a control-flow signal, not an error
    """The event was handled before: its stored result is the answer."""

    def __init__(self, result: Any) -> None:
        super().__init__("event already handled")
        self.result = result


def current() -> Claim | None:
    """The claim of the acting stage running now, if any (read by the audit adapter and
    ``publish`` to fold the claim and the completion into their own writes)."""
    return _current.get()


class Claim:
    """One event's claim: taken by the first write, completed beside the report."""

    def __init__(self, store: OnceStore, key: str, in_progress_ms: int | None) -> None:
        self.store = store
        self.key = key
        self.in_progress_ms = in_progress_ms
        self.claimed = False
        self.completed = False
        #: the parts of the report that went out (this attempt's, and a released attempt's)
        self.sent: set[str] = set()
        #: the released record this claim takes over (its ``claim`` token), once read
        self._released: str | None = None
        # Marks the claim as this invocation's: if botocore retries a claim whose first attempt
        # landed (a timeout, a reset connection), the condition fails on our own record.
        self.token = uuid.uuid4().hex
        #: ``ConditionCheck`` items the claim's first write carries (the undo's exemptions, as
        #: absent items, instead of a read before it); dropped once one fails (``CheckFailed``)
        self.checks: tuple[Mapping[str, Any], ...] = ()
        #: the claim's ``expiration`` (epoch seconds), kept by the completion
        self._expiration: int | None = None

    def _put(self) -> dict[str, Any]:
        now = time.time()
        self._expiration = int(now) + self.store.ttl_seconds
        item: dict[str, Any] = {
            "id": {"S": self.key},
            "status": {"S": INPROGRESS},
            "claim": {"S": self.token},
            "expiration": {"N": str(self._expiration)},
        }
        if self.in_progress_ms is not None:
            item["in_progress_expiration"] = {"N": str(int(now * 1000) + self.in_progress_ms)}
        if self._released is not None:
            return {
                "TableName": self.store.table,
                "Item": item,
                "ConditionExpression": _RETAKE,
                "ExpressionAttributeNames": {"#status": "status", "#claim": "claim"},
                "ExpressionAttributeValues": {
                    ":released": {"S": RELEASED},
                    ":was": {"S": self._released},
                },
            }
        return {
            "TableName": self.store.table,
            "Item": item,
            "ConditionExpression": _CLAIMABLE,
            "ExpressionAttributeNames": {
                "#id": "id",
                "#expiration": "expiration",
                "#status": "status",
                "#ipe": "in_progress_expiration",
            },
            "ExpressionAttributeValues": {
                ":now": {"N": str(int(now))},
                ":now_ms": {"N": str(int(now * 1000))},
                ":inprogress": {"S": INPROGRESS},
            },
        }

    def take(self, *with_puts: Mapping[str, Any]) -> None:
        """Claim the event, writing ``with_puts`` (``{"TableName", "Item"}``) in the same
        transaction, with the claim's ``checks`` after them. Raises ``AlreadyDone`` or
        ``EventInProgress`` on a duplicate (the claim is the transaction's first item, so its
        refusal is ``CancellationReasons[0]``), ``CheckFailed`` when only a check failed."""
        from botocore.exceptions import ClientError

        ddb = self.store.client
        for _ in range(2):  # the second time only to take over a released claim just read
            checks = self.checks
            try:
                if with_puts or checks:
                    ddb.transact_write_items(
                        TransactItems=[
                            {"Put": self._put()},
                            *({"Put": dict(p)} for p in with_puts),
                            *({"ConditionCheck": dict(c)} for c in checks),
                        ]
                    )
                else:
                    ddb.put_item(**self._put())
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                reasons = exc.response.get("CancellationReasons") or [{}]
                claim_refused = code == "ConditionalCheckFailedException" or (
                    code == "TransactionCanceledException"
                    and reasons[0].get("Code") == "ConditionalCheckFailed"
                )
                if not claim_refused:
                    failed = [r.get("Code") for r in reasons[1 + len(with_puts) :]]
                    if (
                        checks
                        and code == "TransactionCanceledException"
                        and "ConditionalCheckFailed" in failed
                    ):
                        self.checks = ()
                        raise CheckFailed(f"event {self.key}: an item the claim checked for exists") from None
                    raise
                if self._duplicate():
                    continue  # released by a failed attempt: take it over
            self.claimed = True
            return
        raise EventInProgress(f"event {self.key}: a released claim was taken by another invocation")

    def _duplicate(self) -> bool:
        """Why the claim was refused. True: a failed attempt released it (what it sent is now
        in ``sent``), take it over; False: it is ours already; raises on a true duplicate."""
        resp = self.store.client.get_item(
            TableName=self.store.table, Key={"id": {"S": self.key}}, ConsistentRead=True
        )
        item = resp.get("Item") or {}
        status = item.get("status", {}).get("S")
        if item.get("claim", {}).get("S") == self.token and status == INPROGRESS:
            return False  # our own claim, written by an attempt whose answer was lost: it holds
        if status == COMPLETED:
            raise AlreadyDone(json.loads(item.get("data", {}).get("S") or "null"))
        if status == RELEASED and self._released is None:
            self._released = item.get("claim", {}).get("S", "")
            self.sent |= set(item.get("sent", {}).get("SS", []))
            return True
        raise EventInProgress(f"event {self.key} is being handled by another invocation")

    def complete(self, result: Any) -> None:
        """Mark the event handled and keep its result for duplicates: the whole record again
        (a PutItem: no update expression to evaluate), on condition that it is still this
        invocation's claim."""
        self.store.client.put_item(
            TableName=self.store.table,
            Item={
                "id": {"S": self.key},
                "status": {"S": COMPLETED},
                "claim": {"S": self.token},
                "expiration": {"N": str(self._expiration or int(time.time()) + self.store.ttl_seconds)},
                "data": {"S": json.dumps(result, sort_keys=True, default=str)},
            },
            ConditionExpression="#claim = :token",
            ExpressionAttributeNames={"#claim": "claim"},
            ExpressionAttributeValues={":token": {"S": self.token}},
        )
        self.completed = True

    def release(self) -> None:
        """The stage failed: give the claim up so Lambda's retry runs it again. When part of
        the report went out (``sent``), the record stays, RELEASED, naming those parts: the
        retry takes it over and does not send them again."""
        ddb = self.store.client
        if not self.sent:
            ddb.delete_item(TableName=self.store.table, Key={"id": {"S": self.key}})
        else:
            ddb.put_item(
                TableName=self.store.table,
                Item={
                    "id": {"S": self.key},
                    "status": {"S": RELEASED},
                    "claim": {"S": self.token},
                    "sent": {"SS": sorted(self.sent)},
                    "expiration": {"N": str(int(time.time()) + self.store.ttl_seconds)},
                },
            )
        self.claimed = self.completed = False


class OnceStore:
    """The idempotency table, through a client built once per container."""

    def __init__(self, client: Any, table: str, function_name: str, ttl_seconds: int = 86400) -> None:
        self.client = client
        self.table = table
        self.function_name = function_name
        self.ttl_seconds = ttl_seconds

    def run(self, event_id: str, fn: Callable[[], T], context: Any = None) -> T:
        """Run ``fn`` at most once for ``event_id``; a duplicate gets the first run's result."""
        remaining = None
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            remaining = int(context.get_remaining_time_in_millis())
        name = getattr(context, "function_name", None) or self.function_name
        claim = Claim(self, f"{name}#{event_id}", remaining)
        token = _current.set(claim)
        try:
            result = fn()
            if not claim.claimed:
                claim.take()  # a stage that wrote nothing still records that it ran
            if not claim.completed:
                claim.complete(result)
            return result
        except AlreadyDone as done:
            return done.result  # type: ignore[no-any-return]
        except BaseException as exc:
            if claim.claimed:
                try:
                    claim.release()
                except Exception as cleanup:  # noqa: BLE001 - the first failure is the one to raise
                    exc.add_note(f"and releasing the claim failed too: {cleanup!r}")
            raise
        finally:
            _current.reset(token)
