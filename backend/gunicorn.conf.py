"""gunicorn settings sized for Label Studio's timeouts, read from ``Settings`` (so a refused
configuration, e.g. half of the basic-auth pair, stops gunicorn before any worker starts).

- ``timeout`` 120 s > Label Studio's 100 s /predict timeout, so a large Retrieve Predictions call
  is not killed mid-way.
- ``gthread`` workers: /health and /webhook (1 s timeout) stay answerable while a thread serves a
  long /predict. With the default in-process queue keep WORKERS=1 (training runs in a background
  thread of that worker); set REDIS_URL to scale out to several workers and RQ worker processes.
- No ``preload_app``: each worker imports the app (and torch) after fork, so nothing initialises
  CUDA before fork, and each worker loads a model once and reloads only when the serving version
  changes.
- No control socket: gunicorn >= 25.1 opens one at a per-user path ($XDG_RUNTIME_DIR/gunicorn.ctl),
  shared by every instance of the same user, so one instance's exit deleted another's socket.
- ``forwarder_headers`` empty: gunicorn otherwise takes ``SCRIPT_NAME`` from a request header of
  any client on 127.0.0.1, and a path outside it was a 500. No proxy in front of this backend sets it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # gunicorn -c from any directory

from backend.settings import Settings  # noqa: E402

_s = Settings.from_env()
bind = f"{_s.host}:{_s.port}"
workers = _s.workers
threads = _s.threads
worker_class = "gthread"
timeout = _s.gunicorn_timeout
graceful_timeout = 10  # a training interrupted by a stop is re-run at the next start
keepalive = 5
preload_app = False
accesslog = "-" if _s.access_log else None
errorlog = "-"
loglevel = _s.log_level.lower()
control_socket_disable = True
forwarder_headers = ""
