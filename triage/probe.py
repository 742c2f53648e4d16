"""``python -m triage.probe [PATH]``: the container health check.

Asks the worker's own web port (``TRIAGE_WEB_PORT``, default 6066, on the loopback) for
``PATH`` (default ``/health``) and exits 0 when it answers 200, 1 with one line otherwise. The
standard library only, so the check costs a few milliseconds and needs no curl in the image.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe(path: str = "/health", port: int | None = None, timeout: float = 3.0) -> str | None:
    """None when ``http://127.0.0.1:PORT{path}`` answers 200, else why not."""
    port = port if port is not None else int(os.environ.get("TRIAGE_WEB_PORT", "6066"))
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: no answer ({getattr(exc, 'reason', exc)})"
    return None if status == 200 else f"{url}: status {status}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    problem = probe(args[0] if args else "/health")
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
