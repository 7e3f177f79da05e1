"""One exception root for the backend; each subclass carries the HTTP status it maps to.

Messages are written for the Label Studio user who will read them in the UI or the logs: they name
the problem and never contain tracebacks or secrets.
"""
from __future__ import annotations


class BackendError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(BackendError):
    status = 400


class Unauthorized(BackendError):
    status = 401


class NotFound(BackendError):
    status = 404


class Conflict(BackendError):
    status = 409


class PayloadTooLarge(BackendError):
    status = 413


class UpstreamError(BackendError):
    """Label Studio or the LLM provider failed after retries."""

    status = 502
