"""Who may call which route.

Label Studio sends HTTP basic auth (when entered in the model's settings) on /health, /setup,
/predict, /versions and START_TRAINING, but sends project webhooks (ANNOTATION_CREATED ...) with
no credentials at all. So: with ``BASIC_AUTH_USER``/``BASIC_AUTH_PASS`` set, every route except
/health needs basic auth, and /webhook additionally accepts requests that arrive under the
secret path prefix ``/<WEBHOOK_SECRET>/`` — register the backend in Label Studio as
``http://host:9090/<WEBHOOK_SECRET>`` and Label Studio itself builds ``.../<secret>/webhook`` for
its own events. Comparisons are constant-time; secrets never reach logs or responses.
"""
from __future__ import annotations

import hmac

from backend.settings import Settings

SECRET_ENV_KEY = "lal.secret_prefix_ok"


class SecretPrefixMiddleware:
    """Strip a leading ``/<secret>`` from the path and mark the request as trusted."""

    def __init__(self, app, secret: str | None):
        self.app = app
        self.prefix = f"/{secret}" if secret else None

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        environ[SECRET_ENV_KEY] = False
        if self.prefix:
            head, sep, rest = path[1:].partition("/")
            if hmac.compare_digest(f"/{head}".encode(), self.prefix.encode()):
                environ["PATH_INFO"] = "/" + rest if sep else "/"
                environ[SECRET_ENV_KEY] = True
        return self.app(environ, start_response)


def basic_auth_ok(settings: Settings, authorization) -> bool:
    if not settings.basic_auth_enabled:
        return True
    if authorization is None or authorization.type != "basic":
        return False
    user_ok = hmac.compare_digest((authorization.username or "").encode(), settings.basic_auth_user.encode())
    pass_ok = hmac.compare_digest((authorization.password or "").encode(), settings.basic_auth_pass.encode())
    return user_ok and pass_ok


def webhook_trusted(settings: Settings, environ, authorization) -> bool:
    if environ.get(SECRET_ENV_KEY):
        return True
    if settings.basic_auth_enabled:
        return basic_auth_ok(settings, authorization)
    # no basic auth configured: the webhook is as open as every other route, unless a secret is set
    return not settings.webhook_secret
