"""SNS adapter: one message per decision, text for people and JSON for programs.

``MessageStructure=json`` lets email subscribers get the readable text (the message's
``default``) while SQS, Lambda and HTTP(S) subscribers get the JSON body; message attributes
carry control, severity and action so subscriptions can filter without parsing the body.
"""

from __future__ import annotations

import json
from typing import Any

from perimeter.core.report import Notification, sns_subject


class SnsAdapter:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self._topic_arn = topic_arn

    def publish(self, note: Notification) -> str:
        body = json.dumps(note.body, sort_keys=True, default=str)
        resp = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(note.subject),
            MessageStructure="json",
            # Email (and SMS, mobile push, Firehose) subscribers get "default", the text:
            # repeating it under "email" would only make the message larger.
            Message=json.dumps(
                {
                    "default": note.text,
                    "sqs": body,
                    "lambda": body,
                    "https": body,
                    "http": body,
                }
            ),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in note.attributes.items() if v
            },
        )
        return str(resp.get("MessageId", ""))
