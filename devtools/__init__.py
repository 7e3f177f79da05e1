"""Tools for development, tests, benchmarks and the demo; never in the Docker image.

``fakellm`` (a deterministic OpenAI-compatible server with LLM personas), ``fakels`` (a fake Label
Studio for fault tests), ``ls_process`` (starts the real Label Studio, on SQLite or PostgreSQL) and
``demo`` (``python -m devtools.demo``: Label Studio + the backend with a trained Hausa project).
The service packages ``backend`` and ``model`` never import it (the simulation's ``--fake-llm``
loads ``devtools.fakellm`` on demand).
"""
