"""Logging that can never print a secret: every record is redacted before any handler sees it.

A secret can reach a log line in another spelling than the one in the environment: gunicorn's
access log prints the raw request line, and ``/%77hS3cret.../webhook`` (percent-encoded, hex in
either case, or encoded twice) reaches the app as the plain secret prefix. So each line is matched
case-insensitively both as it is and percent-decoded; when a secret only shows in the decoded form,
the decoded line is logged, redacted.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from backend.settings import Settings

_MAX_DECODE_ROUNDS = 4  # %2525... nests: decode until stable, bounded


def _decoded(text: str) -> str:
    for _ in range(_MAX_DECODE_ROUNDS):
        if "%" not in text:
            break
        nxt = unquote(text, errors="replace")
        if nxt == text:
            break
        text = nxt
    return text


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self._patterns = [re.compile(re.escape(s), re.IGNORECASE) for s in self.secrets]

    def redact(self, text: str) -> str:
        """``text`` with every spelling of every secret replaced by ``***``."""
        for p in self._patterns:
            text = p.sub("***", text)
        if "%" in text:
            decoded = _decoded(text)
            redacted = decoded
            for p in self._patterns:
                redacted = p.sub("***", redacted)
            if redacted != decoded:  # a secret hidden by percent-encoding
                return redacted
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg, record.args = self.redact(record.getMessage()), None
            if record.exc_info:
                import traceback

                text = "".join(traceback.format_exception(*record.exc_info))
                record.exc_text, record.exc_info = self.redact(text), None
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
