"""``python -m devtools.fakellm --port 0 --gold FILE.conll [--news FILE.tsv]``: serve until Ctrl-C."""
from __future__ import annotations

import argparse
import time

from devtools.fakellm.server import load_gold, start_server


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m devtools.fakellm", description=__doc__)
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--host", default="127.0.0.1", help="loopback only")
    ap.add_argument("--gold", help="CoNLL file whose sentences the server answers from")
    ap.add_argument("--news", help="MasakhaNEWS TSV for classification requests")
    args = ap.parse_args(argv)
    handle = start_server(load_gold(args.gold, args.news), host=args.host, port=args.port)
    print(f"fake LLM listening on {handle.base_url} (model name = persona, e.g. perfect, "
          "noisy-0.14, slow-200)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        handle.stop()


if __name__ == "__main__":
    main()
