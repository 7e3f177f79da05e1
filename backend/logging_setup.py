"""Logging that can never print a secret: every record is redacted before any handler sees it."""
from __future__ import annotations

import logging

from backend.settings import Settings


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            for s in self.secrets:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
            if record.exc_info:
                import traceback

                text = "".join(traceback.format_exception(*record.exc_info))
                for s in self.secrets:
                    text = text.replace(s, "***")
                record.exc_text, record.exc_info = text, None
        return True


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    # gunicorn's own loggers have their own handlers: its access log prints the path (which carries
    # the webhook secret prefix), the query string and the basic-auth user name, so redact there too
    handlers = [*root.handlers, *(h for name in ("gunicorn.access", "gunicorn.error")
                                  for h in logging.getLogger(name).handlers)]
    for h in handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter(settings.secrets()))
    for noisy in ("httpx", "httpcore", "urllib3", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
