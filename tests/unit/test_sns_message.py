"""The SNS message's shape (``adapters/sns.py``): the text for people under ``default`` (what
email, SMS and mobile-push subscribers get), the JSON body for each program protocol, and the
text only once: SNS delivers ``default`` to every protocol the message names no key for."""

from __future__ import annotations

import json
from typing import Any

from perimeter.adapters.sns import SnsAdapter
from perimeter.core.report import Notification


class _Client:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


def test_the_text_goes_once_under_default_and_the_body_to_each_program_protocol() -> None:
    client = _Client()
    note = Notification(
        subject="[Perimeter] HIGH PER-SG-1 revoked on sg-1",
        text="AuthorizeSecurityGroupIngress by someone.\n\nHIGH PER-SG-1 revoked sg-1: tcp/22 from 0.0.0.0/0",
        body={"event_id": "e-1", "decisions": [{"control": "PER-SG-1", "action": "revoked"}]},
        attributes={"control": "PER-SG-1", "severity": "HIGH", "action": "revoked"},
    )
    assert SnsAdapter(client, "arn:aws:sns:us-east-1:123456789012:t").publish(note) == "m-1"
    (call,) = client.calls
    assert call["MessageStructure"] == "json"
    message = json.loads(call["Message"])
    assert message["default"] == note.text
    assert set(message) == {"default", "sqs", "lambda", "https", "http"}
    for protocol in ("sqs", "lambda", "https", "http"):
        assert json.loads(message[protocol]) == note.body
    assert call["Message"].count(json.dumps(note.text)[1:-1]) == 1
