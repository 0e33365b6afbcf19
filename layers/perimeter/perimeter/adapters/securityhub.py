"""Security Hub adapter: BatchImportFindings in chunks of 100, failures surfaced.

BatchImportFindings answers 200 even when it rejects findings; a rejected finding would be a
lost finding, so any ``FailedFindings`` raise and the event is retried (the ids are
deterministic, so a retry updates rather than duplicates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_BATCH = 100


class FindingsRejected(RuntimeError):
    """Security Hub refused one or more findings."""


class SecurityHubAdapter:
    def __init__(self, client: Any) -> None:
        self._hub = client

    def import_findings(self, findings: Sequence[dict[str, Any]]) -> int:
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
