"""One line a person can act on, instead of a traceback, for what goes wrong before a handler runs.

The command talks to AWS (or a moto server) through plain boto3, so a missing region, missing
or rejected credentials and an unreachable endpoint surface as botocore exceptions deep in a
call. ``explain`` names what is wrong and what to set; anything it does not know stays a
traceback, because that is a bug to report, not a setting to change.
"""

from __future__ import annotations

import os

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

_REJECTED = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AccessDeniedException",
}

LOCAL_HINT = 'or try it locally: add --embedded, or eval "$(perimeter local up)"'


class UsageError(Exception):
    """Input the user can fix (the event file, an option): the message is the whole story."""


def explain(exc: BaseException) -> str | None:
    """The one line for a known failure, or None."""
    if isinstance(exc, UsageError):
        return str(exc)
    if isinstance(exc, NoRegionError):
        return f"no AWS region is set: export AWS_DEFAULT_REGION (e.g. us-east-1), {LOCAL_HINT}"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            f"(or AWS_PROFILE), {LOCAL_HINT}"
        )
    if isinstance(exc, ProfileNotFound):
        return f"{exc}: set AWS_PROFILE to a profile in your AWS config, or unset it"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        url = exc.kwargs.get("endpoint_url", "the AWS endpoint")
        if os.environ.get("AWS_ENDPOINT_URL"):
            return (
                f"cannot reach {url}: check AWS_ENDPOINT_URL (is `perimeter local up` still running?) "
                "or unset it to reach AWS"
            )
        return f"cannot reach {url}: check the network or proxy settings, {LOCAL_HINT}"
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _REJECTED:
            op = getattr(exc, "operation_name", "a call")
            return f"AWS refused {op} ({code}): check the credentials in AWS_ACCESS_KEY_ID/AWS_PROFILE"
    return None
