"""Read CloudTrail history for ``perimeter replay``: trail log files (local or S3) and
CloudTrail Lake / Athena query results, one record at a time.

Memory stays flat whatever the history's size: files are visited one by one, and inside a
file the ``Records`` array is decoded element by element from a bounded text buffer
(``iter_json_records``), so a record is held only while it is judged. Reading never writes
anything, and a local directory makes no AWS call at all.

Shapes accepted:

- a trail's log file: ``{"Records": [...]}``, gzip (``.json.gz``) or plain (``.json``);
- one record, a JSON array of records, or a record in its EventBridge envelope (the corpus);
- CloudTrail Lake results (``read_lake_results``): what ``GetQueryResults`` returns,
  ``{"QueryResultRows": [[{"column": "value"}, ...], ...]}`` (botocore's ``cloudtrail``
  model: a list of rows, each a list of one-entry string maps), one page per file or JSON
  lines of pages; or JSON lines of ``{"column": value}`` rows (an Athena ``UNLOAD ... WITH
  (format = 'JSON')`` or an export). Columns are the record's field names, case-insensitive
  (``eventsource``, ``eventname``, ``awsregion``, ``recipientaccountid``, ``eventid``,
  ``eventtime``, ``errorcode``), with ``useridentity``, ``requestparameters`` and
  ``responseelements`` as JSON text, or ``useridentity_arn`` / ``_type`` / ``_accountid`` /
  ``_principalid`` / ``_invokedby`` when the query selects only those fields. A record-valued
  ``eventjson`` column is used as it is.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 20  # characters read at a time: the buffer never holds much more than this
_SKIP = re.compile(r"[\s,]*")
_RECORDS_START = re.compile(r'\s*\{\s*"Records"\s*:\s*\[')
_DECODER = json.JSONDecoder()


class HistoryError(ValueError):
    """A history file that is not CloudTrail JSON; the message names the file."""


@dataclass
class ReadStats:
    files: int = 0
    bytes: int = 0


# --- one document -------------------------------------------------------------------------


def iter_json_records(stream: IO[str], name: str = "<stream>") -> Iterator[Any]:
    """The records of one CloudTrail JSON document, decoded incrementally.

    ``{"Records": [...]}`` and a top-level array are streamed element by element; any other
    document (one record, an envelope) is small and decoded whole.

    Raises:
        HistoryError: the text is not JSON of one of those shapes.
    """
    buf = stream.read(CHUNK)
    start = _RECORDS_START.match(buf)
    if start is None and buf.lstrip()[:1] == "[":
        start = re.match(r"\s*\[", buf)
    if start is None:
        rest = buf + stream.read()
        try:
            doc = json.loads(rest) if rest.strip() else None
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{name}: not JSON ({exc})") from exc
        yield from _records_of(doc, name)
        return
    pos = start.end()
    eof = False
    while True:
        pos = _SKIP.match(buf, pos).end()  # type: ignore[union-attr]
        if pos >= len(buf):
            if eof:
                raise HistoryError(f"{name}: the Records array is not closed")
            buf, pos, eof = _refill(stream, buf, pos)
            continue
        if buf[pos] == "]":
            return
        try:
            record, end = _DECODER.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if eof:
                raise HistoryError(f"{name}: bad record ({exc})") from exc
            buf, pos, eof = _refill(stream, buf, pos)
            continue
        if end >= len(buf) and not eof:
            # A number or literal cut by the buffer's end would decode short: read on.
            buf, pos, eof = _refill(stream, buf, pos)
            continue
        yield record
        pos = end


def _refill(stream: IO[str], buf: str, pos: int) -> tuple[str, int, bool]:
    more = stream.read(CHUNK)
    return buf[pos:] + more, 0, not more


def _records_of(doc: Any, name: str) -> Iterator[Any]:
    if doc is None:
        return
    if isinstance(doc, list):
        yield from doc
    elif isinstance(doc, Mapping) and isinstance(doc.get("Records"), list):
        yield from doc["Records"]
    elif isinstance(doc, Mapping):
        yield doc
    else:
        raise HistoryError(f"{name}: expected a JSON object or array, got {type(doc).__name__}")


def _text(raw: Any, gz: bool | None = None) -> IO[str]:
    """Text from a byte stream, gunzipped when ``gz`` says so or (``None``) when it starts
    with gzip's magic bytes."""
    if gz is None:
        gz = raw.peek(2)[:2] == b"\x1f\x8b"
    return io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if gz else raw, encoding="utf-8")


# --- where documents come from ------------------------------------------------------------

HISTORY_SUFFIXES = (".json", ".json.gz")
#: A trail's digest files (integrity hashes, no records) sit beside its logs.
DIGEST_DIR = "CloudTrail-Digest"
RESULT_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".gz")  # Athena UNLOAD writes <id>.gz


def local_files(root: Path, suffixes: tuple[str, ...] = HISTORY_SUFFIXES) -> list[Path]:
    """Every file under ``root`` (or ``root`` itself) whose name ends in ``suffixes``, sorted."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise HistoryError(f"{root}: no such file or directory")
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.endswith(suffixes) and DIGEST_DIR not in p.parts
    )


def read_local(root: Path, stats: ReadStats | None = None) -> Iterator[Any]:
    """Records of every history file under ``root``; one file open at a time."""
    for path in local_files(root):
        if stats is not None:
            stats.files += 1
            stats.bytes += path.stat().st_size
        with path.open("rb") as fh:
            yield from iter_json_records(_text(fh), str(path))


def parse_s3_url(url: str) -> tuple[str, str]:
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if not m:
        raise HistoryError(f"{url}: expected s3://bucket/prefix")
    return m.group(1), m.group(2)


def read_s3(client: Any, url: str, stats: ReadStats | None = None, *, page_size: int = 1000) -> Iterator[Any]:
    """Records of every ``.json.gz`` / ``.json`` object under an S3 prefix (a trail writes
    ``AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/``). Only ListObjectsV2 and
    GetObject are called; each object is streamed, not downloaded whole."""
    bucket, prefix = parse_s3_url(url)
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
    )
    for page in pages:
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if not key.endswith(HISTORY_SUFFIXES) or f"/{DIGEST_DIR}/" in f"/{key}":
                continue
            if stats is not None:
                stats.files += 1
                stats.bytes += int(obj.get("Size", 0))
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield from iter_json_records(_text(body, key.endswith(".gz")), f"s3://{bucket}/{key}")
            finally:
                body.close()


# --- CloudTrail Lake / Athena results -----------------------------------------------------

_SCALARS = {
    "eventid": "eventID",
    "eventtime": "eventTime",
    "eventsource": "eventSource",
    "eventname": "eventName",
    "awsregion": "awsRegion",
    "recipientaccountid": "recipientAccountId",
    "errorcode": "errorCode",
    "errormessage": "errorMessage",
    "sourceipaddress": "sourceIPAddress",
    "useragent": "userAgent",
    "readonly": "readOnly",
}
_OBJECTS = {
    "useridentity": "userIdentity",
    "requestparameters": "requestParameters",
    "responseelements": "responseElements",
}
_IDENTITY = {
    "arn": "arn",
    "type": "type",
    "principalid": "principalId",
    "accountid": "accountId",
    "invokedby": "invokedBy",
}


def _json_value(text: Any) -> Any:
    """Lake renders nested values as JSON text (and a map's values may be JSON text again)."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped[:1] in ("{", "[") or stripped == "null":
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            return text
        if isinstance(value, dict):
            return {k: _json_value(v) for k, v in value.items()}
        return value
    return text


def record_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudTrail record from one result row (column name -> value)."""
    cols = {str(k).lower(): v for k, v in row.items()}
    if "eventjson" in cols:
        record = _json_value(cols["eventjson"])
        if isinstance(record, dict):
            return record
        raise HistoryError("eventjson column is not a JSON object")
    record: dict[str, Any] = {}
    for col, field in _SCALARS.items():
        if cols.get(col) not in (None, ""):
            record[field] = cols[col]
    for col, field in _OBJECTS.items():
        value = _json_value(cols.get(col))
        if isinstance(value, dict):
            record[field] = value
    identity = record.setdefault("userIdentity", {})
    for col, field in _IDENTITY.items():
        value = cols.get(f"useridentity_{col}")
        if value not in (None, ""):
            identity[field] = value
    return record


def rows_of(doc: Any, name: str) -> Iterator[Mapping[str, Any]]:
    """Rows of a GetQueryResults page (list of one-entry maps per row) or one plain row."""
    if isinstance(doc, Mapping) and "QueryResultRows" in doc:
        for row in doc["QueryResultRows"] or []:
            if not isinstance(row, list):
                raise HistoryError(f"{name}: a QueryResultRows row must be a list of column maps")
            merged: dict[str, Any] = {}
            for cell in row:
                merged.update(cell)
            yield merged
    elif isinstance(doc, Mapping):
        yield doc
    elif isinstance(doc, list):
        for item in doc:
            yield from rows_of(item, name)
    else:
        raise HistoryError(f"{name}: not a CloudTrail Lake result page or row")


def read_lake_results(paths: Iterable[Path], stats: ReadStats | None = None) -> Iterator[Any]:
    """Records from CloudTrail Lake result pages or JSON-lines rows (gzip or plain)."""
    for path in paths:
        for file in local_files(path, RESULT_SUFFIXES):
            if stats is not None:
                stats.files += 1
                stats.bytes += file.stat().st_size
            with file.open("rb") as fh:
                yield from _lake_documents(_text(fh), str(file))


def _lake_documents(text: IO[str], name: str) -> Iterator[Any]:
    first = text.readline()
    rest_is_lines = True
    try:
        docs: Iterable[Any] = [json.loads(first)] if first.strip() else []
    except json.JSONDecodeError:
        # Not JSON lines: one (pretty-printed) document.
        rest_is_lines = False
        try:
            docs = [json.loads(first + text.read())]
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{name}: not JSON ({exc})") from exc
    for doc in docs:
        for row in rows_of(doc, name):
            yield record_from_row(row)
    if rest_is_lines:
        for n, line in enumerate(text, start=2):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HistoryError(f"{name}:{n}: not JSON ({exc})") from exc
            for row in rows_of(doc, name):
                yield record_from_row(row)


Source = Callable[[ReadStats], Iterator[Any]]
