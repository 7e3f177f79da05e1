"""Command line: ``python -m backend --help``.

``serve`` starts gunicorn with ``backend/gunicorn.conf.py``; the other commands talk to a running
backend over HTTP (``--url``, basic auth from BASIC_AUTH_USER/BASIC_AUTH_PASS), so they work the
same with the in-process queue and with RQ workers. Every variable is read through ``Settings``,
so ``serve`` refuses what the server would refuse (half-set basic auth, a short WEBHOOK_SECRET)
with one line naming the variable, before gunicorn starts.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from backend.settings import Settings


def _auth(settings: Settings) -> tuple[str, str] | None:
    if settings.basic_auth_enabled:
        return settings.basic_auth_user, settings.basic_auth_pass
    return None


def _call(args, method: str, path: str, body: dict | None = None) -> int:
    import requests

    try:
        r = requests.request(method, args.url.rstrip("/") + path, json=body, auth=_auth(args.settings),
                             timeout=args.timeout)
    except requests.RequestException as e:
        print(f"error: backend at {args.url} unreachable ({type(e).__name__})", file=sys.stderr)
        return 2
    try:
        print(json.dumps(r.json(), indent=2, ensure_ascii=False))
    except ValueError:
        print(r.text)
    return 0 if r.ok else 1


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except ValueError as e:  # the message names the variable
        print(f"error: {e}", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog="python -m backend", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=settings.backend_url)
    p.add_argument("--timeout", type=float, default=30.0)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve", help="start gunicorn on PORT (default 9090) with the embedded defaults")
    v = sub.add_parser("versions", help="list model versions (and the serving one) of a project")
    v.add_argument("project", type=int, nargs="?")
    pin = sub.add_parser("pin", help="serve a given version (roll back) until unpinned")
    pin.add_argument("project", type=int)
    pin.add_argument("version")
    unpin = sub.add_parser("unpin", help="serve the newest version again")
    unpin.add_argument("project", type=int)
    j = sub.add_parser("jobs", help="list jobs, or show one with --id")
    j.add_argument("--project", type=int)
    j.add_argument("--id")
    s = sub.add_parser("submit", help="queue a job: train, prelabel (bulk LLM), rescore, select (LLM selection run)")
    s.add_argument("kind", choices=["train", "prelabel", "rescore", "select"])
    s.add_argument("project", type=int)
    ag = sub.add_parser("agreement", help="live agreement of the LLM and the local model with your annotators")
    ag.add_argument("project", type=int)
    ag.add_argument("--plot", help="also save the agreement plot (PNG) to this path")
    led = sub.add_parser("ledger", help="LLM tokens and cost per project and model")
    led.add_argument("--project")
    args = p.parse_args(argv)
    args.settings = settings

    if args.cmd == "serve":
        conf = Path(__file__).with_name("gunicorn.conf.py")
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(conf), "backend.wsgi:app"])
    if args.cmd == "versions":
        return _call(args, "GET", "/versions" + (f"?project={args.project}" if args.project else ""))
    if args.cmd == "pin":
        return _call(args, "POST", f"/versions/{args.project}/pin", {"version": args.version})
    if args.cmd == "unpin":
        return _call(args, "POST", f"/versions/{args.project}/unpin", {})
    if args.cmd == "jobs":
        if args.id:
            return _call(args, "GET", f"/jobs/{args.id}")
        return _call(args, "GET", "/jobs" + (f"?project={args.project}" if args.project else ""))
    if args.cmd == "submit":
        return _call(args, "POST", "/jobs", {"kind": args.kind, "project": args.project})
    if args.cmd == "agreement":
        if args.plot:
            import requests

            r = requests.get(f"{args.url.rstrip('/')}/agreement/{args.project}/plot.png", timeout=args.timeout,
                             auth=_auth(settings))
            if r.ok:
                Path(args.plot).write_bytes(r.content)
        return _call(args, "GET", f"/agreement?project={args.project}")
    if args.cmd == "ledger":
        return _call(args, "GET", "/llm/ledger" + (f"?project={args.project}" if args.project else ""))
    return 2


if __name__ == "__main__":
    sys.exit(main())
