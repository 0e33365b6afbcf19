"""``perimeter local up`` / ``down``: an embedded AWS that outlives one command.

``invoke --embedded`` starts and stops its own moto server, so nothing it did can be looked at
or undone afterwards. ``local up`` starts moto in a background process on 127.0.0.1 (a free
port), records its pid and endpoint in ``.perimeter/local.json`` and prints the environment to
``eval``; every later command (``invoke``, ``audit list``, ``restore``) then talks to that
account through plain boto3, as it would to AWS. ``local down`` stops it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from perimeter_local.embedded import FAKE_ENV

STATE_DIR = Path(".perimeter")
STATE = STATE_DIR / "local.json"
LOG = STATE_DIR / "local-server.log"
EXPORTED = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A finished server nobody reaped (PID 1 in a container may not) still answers kill(0).
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_state() -> dict[str, Any] | None:
    """The running server's record, or None (a record whose process is gone is removed)."""
    try:
        state = json.loads(STATE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _alive(int(state.get("pid", 0))):
        STATE.unlink(missing_ok=True)
        return None
    return dict(state)


def exports(state: dict[str, Any]) -> str:
    values = {
        "AWS_ENDPOINT_URL": state["endpoint"],
        "AWS_ACCESS_KEY_ID": FAKE_ENV["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": FAKE_ENV["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": state["region"],
    }
    return "".join(f"export {k}={values[k]}\n" for k in EXPORTED)


def up(region: str = "us-east-1", wait_s: float = 60.0) -> dict[str, Any]:
    """Start the server unless one runs; return its record."""
    state = read_state()
    if state is not None:
        return state
    STATE_DIR.mkdir(exist_ok=True)
    env = {**os.environ, **FAKE_ENV, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    env.pop("AWS_ENDPOINT_URL", None)
    with LOG.open("ab") as log:
        # Its own session: the server survives this command and the terminal's Ctrl-C.
        proc = subprocess.Popen(
            [sys.executable, "-m", "perimeter_local.localserver", "serve", str(STATE.resolve()), region],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        state = read_state()
        if state is not None and state.get("pid") == proc.pid:
            return state
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the local AWS did not start; see {LOG}")


def down() -> dict[str, Any] | None:
    """Stop the server; return the record it had, or None when none ran."""
    state = read_state()
    if state is None:
        return None
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    STATE.unlink(missing_ok=True)
    return state


def serve(state_path: str, region: str) -> None:
    """The background process: moto on 127.0.0.1, a free port, until SIGTERM."""
    import logging

    from moto.server import ThreadedMotoServer

    from perimeter_local.moto_gaps import serve_marketplace_listing

    serve_marketplace_listing()  # what moto lacks, filled in (moto_gaps.py)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    stopping = {"now": False}

    def _stop(*_: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    record = {
        "pid": os.getpid(),
        "endpoint": f"http://{host}:{port}",
        "region": region,
        "started": time.time(),
    }
    tmp = Path(state_path + ".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(state_path)  # atomic: `up` never reads half a record
    while not stopping["now"]:
        time.sleep(0.2)
    server.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m perimeter_local.localserver serve STATE_FILE REGION")
