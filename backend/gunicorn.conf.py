"""gunicorn settings sized for Label Studio's timeouts.

- ``timeout`` 120 s > Label Studio's 100 s /predict timeout, so a large Retrieve Predictions call
  is not killed mid-way.
- ``gthread`` workers: /health and /webhook (1 s timeout) stay answerable while a thread serves a
  long /predict. With the default in-process queue keep WORKERS=1 (training runs in a background
  thread of that worker); set REDIS_URL to scale out to several workers and RQ worker processes.
- No ``preload_app``: each worker imports the app (and torch) after fork, so nothing initialises
  CUDA before fork, and each worker loads a model once and reloads only when the serving version
  changes.
"""
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '9090')}"
workers = int(os.environ.get("WORKERS", "1"))
threads = int(os.environ.get("THREADS", "8"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 10  # a training interrupted by a stop is re-run at the next start
keepalive = 5
preload_app = False
accesslog = "-" if os.environ.get("ACCESS_LOG", "false").lower() in ("1", "true", "yes") else None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
