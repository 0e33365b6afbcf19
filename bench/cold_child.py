"""One cold Lambda container: a fresh interpreter that imports a handler and handles one event.

Run by ``bench/cold_start.py`` with ``python -S`` (no site hooks: sys.path is set as Lambda's
runtime sets it, the function's code, its layer, then the packages), never by hand:

    python -S cold_child.py TOOL SITE_PACKAGES EVENT_JSON LOGFILE [PATH...]

TOOL is ``perimeter`` (import ``app``, call ``lambda_handler``) or ``c7n`` (import
``c7n.handler``, call ``dispatch_event`` with ./config.json). Logs go to LOGFILE as Lambda
captures them; the driver reads one line, ``ok``, when the event has been handled.
"""

import os
import sys


def main() -> int:
    tool, site, event_path, logfile, *paths = sys.argv[1:]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    sys.path[:0] = [*paths, site]
    import json
    import logging

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
    logging.getLogger().addHandler(handler)  # as Lambda's Python runtime does

    class Context:
        function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
        function_version = "$LATEST"
        memory_limit_in_mb = 512
        invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        aws_request_id = "cold-start"
        log_group_name = f"/aws/lambda/{function_name}"
        log_stream_name = "cold"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    with open(event_path) as f:
        event = json.load(f)
    if tool == "perimeter":
        import app  # the handler module, on the Lambda-like path

        out = app.lambda_handler(event, Context())
        status = out.get("status")
    else:
        from c7n import handler as c7n_handler

        c7n_handler.dispatch_event(event, Context())
        status = "done"
    proto.write(f"{status}\n")
    proto.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
