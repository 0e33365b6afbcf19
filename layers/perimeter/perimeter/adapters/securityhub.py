"""Security Hub adapter: BatchImportFindings in chunks of 100, failures surfaced; GetFindings by id.

BatchImportFindings answers 200 even when it rejects findings; a rejected finding would be a
lost finding, so any ``FailedFindings`` raise and the event is retried (the ids are
deterministic, so a retry updates rather than duplicates). Two findings with one ``Id`` in a
batch raise before anything is sent: Security Hub would silently keep only one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_BATCH = 100
#: GetFindings accepts at most 20 values per filter attribute.
MAX_FILTER_VALUES = 20


class FindingsRejected(RuntimeError):
    """Security Hub refused one or more findings."""


class DuplicateFindingId(ValueError):
    """Two findings in one batch share an ``Id``: Security Hub would keep one and drop the rest."""


def check_unique_ids(findings: Sequence[dict[str, Any]]) -> None:
    seen: set[str] = set()
    twins: set[str] = set()
    for f in findings:
        fid = str(f.get("Id"))
        (twins if fid in seen else seen).add(fid)
    if twins:
        raise DuplicateFindingId(
            f"{len(twins)} finding id(s) repeated in one batch: {', '.join(sorted(twins)[:5])}"
        )


class SecurityHubAdapter:
    def __init__(self, client: Any) -> None:
        self._hub = client

    def import_findings(self, findings: Sequence[dict[str, Any]]) -> int:
        check_unique_ids(findings)
        imported = 0
        for start in range(0, len(findings), MAX_BATCH):
            chunk = list(findings[start : start + MAX_BATCH])
            resp = self._hub.batch_import_findings(Findings=chunk)
            failed = resp.get("FailedFindings") or []
            if failed:
                detail = "; ".join(
                    f"{f.get('Id')}: {f.get('ErrorCode')} {f.get('ErrorMessage')}" for f in failed[:5]
                )
                raise FindingsRejected(f"Security Hub rejected {len(failed)} finding(s): {detail}")
            imported += int(resp.get("SuccessCount", len(chunk)))
        return imported

    def existing(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored findings with these ids (GetFindings, 20 ids per filter as AWS allows).

        Results are matched by ``Id`` here as well: moto ignores ``Filters`` (FACTS.md) and a
        real hub returns only what was asked, so both read the same."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), MAX_FILTER_VALUES):
            chunk = wanted[start : start + MAX_FILTER_VALUES]
            keep = set(chunk)
            filters = {"Id": [{"Value": i, "Comparison": "EQUALS"} for i in chunk]}
            token = None
            while True:
                kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 100}
                if token:
                    kwargs["NextToken"] = token
                resp = self._hub.get_findings(**kwargs)
                for f in resp.get("Findings", []):
                    if f.get("Id") in keep:
                        out[f["Id"]] = f
                token = resp.get("NextToken")
                if not token:
                    break
        return out

    def active_findings(self, product_arn: str) -> list[dict[str, Any]]:
        """Perimeter's active findings in this account and region (GetFindings, 100 a page).
        The filters are repeated on the results: a filter Security Hub ignored (moto does)
        must not make the sweep touch another product's findings."""
        filters = {
            "ProductArn": [{"Value": product_arn, "Comparison": "EQUALS"}],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
            "GeneratorId": [{"Value": "PER-", "Comparison": "PREFIX"}],
        }
        out: list[dict[str, Any]] = []
        paginator = self._hub.get_paginator("get_findings")
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": MAX_BATCH}):
            for f in page.get("Findings", []):
                generator = str(f.get("GeneratorId", ""))
                if (
                    f.get("ProductArn") == product_arn
                    and f.get("RecordState") == "ACTIVE"
                    and generator.startswith("PER-")
                ):
                    out.append(f)
        return out

    def note_findings(
        self, identifiers: Sequence[dict[str, str]], *, note: str, by: str, workflow: str | None
    ) -> list[str]:
        """BatchUpdateFindings (the customer's side of a finding: Note and Workflow, which a
        later BatchImportFindings does not overwrite), 100 findings a call. Returns the ids
        Security Hub no longer holds (``FindingNotFound``: nothing to note, and a retry would
        not change that); any other finding it could not update raises, so the invocation is
        retried."""
        gone: list[str] = []
        for start in range(0, len(identifiers), MAX_BATCH):
            chunk = list(identifiers[start : start + MAX_BATCH])
            kwargs: dict[str, Any] = {
                "FindingIdentifiers": chunk,
                "Note": {"Text": note[:512], "UpdatedBy": by[:512]},
            }
            if workflow:
                kwargs["Workflow"] = {"Status": workflow}
            resp = self._hub.batch_update_findings(**kwargs)
            unprocessed = resp.get("UnprocessedFindings") or []
            gone += [
                str(f.get("FindingIdentifier", {}).get("Id"))
                for f in unprocessed
                if f.get("ErrorCode") == "FindingNotFound"
            ]
            failed = [f for f in unprocessed if f.get("ErrorCode") != "FindingNotFound"]
            if failed:
                detail = "; ".join(
                    f"{f.get('FindingIdentifier', {}).get('Id')}: {f.get('ErrorCode')}" for f in failed[:5]
                )
                raise FindingsRejected(f"Security Hub did not update {len(failed)} finding(s): {detail}")
        return gone
