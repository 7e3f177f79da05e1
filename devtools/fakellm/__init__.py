"""A deterministic OpenAI-compatible test server with model "personas" (see ``personas``)."""
from devtools.fakellm.server import ServerHandle, load_gold, start_server

__all__ = ["ServerHandle", "load_gold", "start_server"]
