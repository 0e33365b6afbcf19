"""The embedded AWS: a moto server on 127.0.0.1 (a free port), in this process.

Plain boto3 reaches it through ``AWS_ENDPOINT_URL`` with fake credentials, exactly as it would
reach AWS, so the handlers run unchanged. Never bound to anything but loopback.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
}


@contextlib.contextmanager
def embedded_aws(region: str = "us-east-1") -> Iterator[str]:
    """Start moto on 127.0.0.1, point this process at it, yield the endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {k: os.environ.get(k) for k in [*FAKE_ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update({**FAKE_ENV, "AWS_DEFAULT_REGION": region, "AWS_REGION": region})
    os.environ.pop("AWS_PROFILE", None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
