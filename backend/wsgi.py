"""gunicorn entry point: ``gunicorn -c backend/gunicorn.conf.py backend.wsgi:app``.

The app (and its job thread pool) is created in each worker after fork, never before it.
"""
from backend.app import create_app

app = create_app()
