"""The embedded AWS: a moto server on 127.0.0.1 (a free port), in this process.

Plain boto3 reaches it through ``AWS_ENDPOINT_URL`` with fake credentials, exactly as it would
reach AWS, so the handlers run unchanged. Never bound to anything but loopback. With
``extensions`` (``invoke --embedded``), moto carries the runner's extensions while in use
(``moto_ext``: a filter moto lacks and a Bedrock stand-in), which ``invoke`` names in its output
whenever they served a call; the demo and the sweep run on plain moto.
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
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


#: One server per process, emptied before each use: a command run several times in one process
#: (the tests) gets a fresh account each time without paying for a new server and new clients.
_SERVER: dict[str, str] = {}


def _fresh_server() -> str:
    if "endpoint" not in _SERVER:
        from moto.server import ThreadedMotoServer

        from perimeter_local.moto_gaps import serve_marketplace_listing

        serve_marketplace_listing()  # what moto lacks, filled in (moto_gaps.py)

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        _SERVER["endpoint"] = f"http://{host}:{port}"
    # moto's documented reset, also on first use: its state is this process's, and whatever
    # used moto before (a test) must not leak in. Backends re-read their settings here (IAM's
    # managed policies among them), so the environment above applies.
    request = urllib.request.Request(f"{_SERVER['endpoint']}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60):
        pass
    return _SERVER["endpoint"]


@contextlib.contextmanager
def embedded_aws(
    region: str = "us-east-1", *, managed_policies: bool = True, extensions: bool = False
) -> Iterator[str]:
    """Point this process at an empty moto account on 127.0.0.1, yield the endpoint URL.

    The server is a daemon thread of this process: it ends with the process."""
    saved = {k: os.environ.get(k) for k in [*FAKE_ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update({**FAKE_ENV, "AWS_DEFAULT_REGION": region, "AWS_REGION": region})
    # AWS's managed policies (AdministratorAccess...) cost moto a second or more per fresh
    # account: load them only for a run that names one. Read in this process: the server is here.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true" if managed_policies else "false"
    os.environ.pop("AWS_PROFILE", None)
    from perimeter_local.moto_ext import moto_extensions

    with moto_extensions() if extensions else contextlib.nullcontext():
        endpoint = _fresh_server()
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            yield endpoint
        finally:
            _restore(saved)


def _restore(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
