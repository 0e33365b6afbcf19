"""``perimeter replay s3://...`` against moto: a trail's bucket is listed page by page and its
gzip objects streamed; the only calls are ListObjectsV2 and GetObject, never a write."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest
from moto import mock_aws
from perimeter.policy import load_default_policy
from perimeter_local.cli import main
from perimeter_local.replay import replay
from perimeter_local.replay_read import read_local, read_s3
from perimeter_local.replay_route import Router, template_routes
from perimeter_local.replay_synth import write_history

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "org-trail-logs"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every botocore API call made from here on, by any client."""
    seen: list[str] = []
    real = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        seen.append(operation)
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return seen


def _upload(s3: Any, root: Path) -> int:
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    files = sorted(root.rglob("*.json.gz"))
    for f in files:
        s3.put_object(Bucket=BUCKET, Key=f.relative_to(root).as_posix(), Body=f.read_bytes())
    # Not history: skipped by name, never read.
    s3.put_object(Bucket=BUCKET, Key="AWSLogs/111122223333/CloudTrail-Digest/x.txt", Body=b"digest")
    s3.put_object(
        Bucket=BUCKET,
        Key="AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/01/d.json.gz",
        Body=gzip.compress(b'{"awsAccountId": "111122223333", "digestSignatureAlgorithm": "SHA256withRSA"}'),
    )
    # A plain (not gzip) log file is read too.
    s3.put_object(Bucket=BUCKET, Key="AWSLogs/extra/plain.json", Body=gzip.decompress(files[0].read_bytes()))
    return len(files) + 1


def test_replay_from_s3_reads_pages_and_writes_nothing(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    written = write_history(tmp_path, 2_500, per_file=400, seed=5)
    router = Router(template_routes(ROOT / "template.yaml"))
    policy = load_default_policy()
    today = dt.date(2026, 11, 29)
    hooked: list[str] = []
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        objects = _upload(s3, tmp_path)
        calls.clear()
        # botocore's own hook on the client replay reads with: every request it would send
        s3.meta.events.register("before-call.s3.*", lambda model, **_: hooked.append(model.name))
        tally = replay(read_s3(s3, f"s3://{BUCKET}/AWSLogs/", page_size=2), router, policy, today=today)
    writes = [op for op in hooked if not op.startswith(("List", "Get", "Head", "Describe"))]
    assert writes == [] and hooked == calls
    assert set(calls) == {"ListObjectsV2", "GetObject"}, calls
    assert calls.count("GetObject") == objects
    assert calls.count("ListObjectsV2") == (objects + 2 + 1) // 2  # pages of 2 keys, digests included
    first_file = sum(1 for _ in read_local(sorted(tmp_path.rglob("*.json.gz"))[0]))
    assert tally.records == written.records + first_file
    local = replay(read_local(tmp_path), router, policy, today=today)
    extra = replay(read_local(sorted(tmp_path.rglob("*.json.gz"))[0]), router, policy, today=today)
    for cid, t in local.controls.items():
        assert tally.controls[cid].events == t.events + (
            extra.controls[cid].events if cid in extra.controls else 0
        )


def test_cli_replays_s3_and_prints_the_report(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    write_history(tmp_path, 800, per_file=300, seed=9)
    with mock_aws():
        _upload(boto3.client("s3", region_name="eu-west-1"), tmp_path)
        calls.clear()
        assert (
            main(["replay", f"s3://{BUCKET}/AWSLogs/111122223333/", "-t", str(ROOT / "template.yaml")]) == 0
        )
    out = capsys.readouterr().out
    assert "records in 3 file(s)" in out and "Dry run: nothing was changed" in out
    assert set(calls) == {"ListObjectsV2", "GetObject"}
    assert "PER-SG-1" in out and "exemptions:" in out
