"""The backend's own Label Studio client (label-studio-sdk), with retries and clear failures.

Label Studio never sends its API token to the backend, so training reads annotations and writes
predictions with ``LABEL_STUDIO_URL`` + ``LABEL_STUDIO_API_KEY``. Transient failures (connection
refused, timeouts, 5xx, 429) are retried with exponential backoff; authentication failures are not
retried and become an ``UpstreamError`` that says which setting to fix. The token never appears
in messages.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from backend.errors import UpstreamError
from backend.ls_json import human_examples
from model.spec import TaskSpec
from model.types import Example

log = logging.getLogger(__name__)
PAGE_SIZE = 500  # full listing (annotations + predictions): a page stays a few MB
LIGHT_PAGE_SIZE = 2_000  # id + text only; pages small enough to predict one while reading the next
# Label Studio 1.23's import view recounts the predictions of EVERY task of the project after each
# request (data_import/api.py, update_tasks_counters): ~10 s per request at 10,000 tasks whatever
# the request's size (10,000 predictions: 11 s in one request, 46 s in four, 142 s in twenty), so
# predictions go in as few requests as possible.
IMPORT_CHUNK = 10_000
IMPORT_TIMEOUT = 300.0


def _annotated_item(annotated: bool) -> dict:
    """Data-manager filter item: tasks with (or without) a non-cancelled annotation."""
    return {"filter": "filter:tasks:total_annotations", "operator": "greater" if annotated else "equal",
            "type": "Number", "value": 0}


def _query(items: list[dict], ids: list[int] | None = None) -> str:
    """A data-manager ``query``: filter ``items`` and-ed, optionally restricted to task ``ids``."""
    q: dict[str, Any] = {"filters": {"conjunction": "and", "items": items}}
    if ids is not None:
        q["selectedItems"] = {"all": False, "included": [int(i) for i in ids]}
    return json.dumps(q)


def ls_time(ts: float) -> str:
    """A UNIX time in the format of Label Studio's Datetime filters (data_manager/managers.py)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ls_time(value: str | None) -> float | None:
    """Label Studio's ISO timestamps (``2026-01-01T00:00:00.123456Z`` or ``+00:00``) as UNIX time."""
    import datetime as dt

    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


def _transient(exc: BaseException) -> bool:
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ApiError) and (exc.status_code or 0) in (429, 500, 502, 503, 504)


_retry = retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(4),
               wait=wait_exponential(multiplier=0.5, max=8), reraise=True)


class LabelStudioClient:
    def __init__(self, url: str | None, api_key: str | None, timeout: float = 30.0):
        if not url or not api_key:
            raise UpstreamError("LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY must be set for training "
                                "and for writing predictions back to Label Studio")
        from label_studio_sdk.client import LabelStudio

        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout)

    def _wrap(self, what: str, fn, *args, **kwargs):
        from label_studio_sdk.core.api_error import ApiError

        try:
            return _retry(fn)(*args, **kwargs)
        except ApiError as e:
            hint = " (check LABEL_STUDIO_API_KEY)" if e.status_code in (401, 403) else ""
            raise UpstreamError(f"Label Studio answered {e.status_code} to {what}{hint}") from None
        except httpx.TransportError as e:
            raise UpstreamError(f"Label Studio at {self.url} is unreachable for {what}: "
                                f"{type(e).__name__}") from None

    def _request(self, method: str, path: str, **kwargs) -> Any:
        """One API call through the SDK's HTTP client (auth, base URL, timeout), as parsed JSON.

        Used where the SDK's typed models cost more than the call itself: listing 10,000 tasks as
        pydantic objects, or validating 10,000 predictions before sending them."""
        from label_studio_sdk.core.api_error import ApiError

        r = self._client._client_wrapper.httpx_client.request(path, method=method, **kwargs)
        if r.status_code >= 400:
            raise ApiError(status_code=r.status_code, headers=dict(r.headers), body=None)
        return r.json() if r.content else None

    def _get_page(self, project_id: int, params: dict, page: int) -> dict | None:
        """One page of ``/api/tasks`` (None past the last page: Label Studio answers 404 there)."""
        from label_studio_sdk.core.api_error import ApiError

        def get() -> dict | None:
            try:
                return self._request("GET", "api/tasks/", params={"project": project_id, **params, "page": page})
            except ApiError as e:
                if e.status_code == 404 and page > 1:
                    return None
                raise

        return self._wrap(f"listing tasks of project {project_id}", get)

    def _pages(self, project_id: int, *, annotated: bool | None, light: bool, include: str = "id,data",
               items: list[dict] | None = None, ids: list[int] | None = None,
               page_size: int | None = None) -> Iterator[list[dict]]:
        """Pages of ``/api/tasks``, one request each (a transient failure re-reads that page):
        ``light`` lists only the ``include`` fields, else tasks with annotations and predictions;
        ``items`` are extra data-manager filters, ``ids`` restricts the listing to those tasks."""
        params: dict[str, Any] = {}
        if light:
            params.update(fields="task_only", include=include, page_size=page_size or LIGHT_PAGE_SIZE)
        else:
            params.update(fields="all", page_size=page_size or PAGE_SIZE)
        filters = list(items or []) + ([_annotated_item(annotated)] if annotated is not None else [])
        if filters or ids is not None:
            params["query"] = _query(filters, ids)
        seen, page = 0, 1
        while True:
            body = self._get_page(project_id, params, page)
            tasks = (body or {}).get("tasks") or []
            if tasks:
                yield tasks
            seen += len(tasks)
            if not tasks or seen >= int((body or {}).get("total") or 0):
                return
            page += 1

    def iter_tasks(self, project_id: int, annotated: bool | None = None) -> list[dict]:
        """Tasks of a project with their annotations and predictions (``annotated``: only those
        with / without a non-cancelled annotation; None: all)."""
        return [t for page in self._pages(project_id, annotated=annotated, light=False) for t in page]

    def tasks_by_ids(self, project_id: int, ids: list[int], full: bool = True,
                     annotated: bool | None = None) -> list[dict]:
        """The given tasks (with annotations and predictions, or id + data when not ``full``; only
        those with / without a non-cancelled annotation when ``annotated`` is set), in requests of
        ``PAGE_SIZE`` ids so the query string stays short; ids that no longer exist are absent."""
        out: list[dict] = []
        ids = sorted(set(int(i) for i in ids))
        for i in range(0, len(ids), PAGE_SIZE):
            chunk = ids[i:i + PAGE_SIZE]
            for page in self._pages(project_id, annotated=annotated, light=not full, ids=chunk):
                out += page
        return out

    def annotated_task_ids(self, project_id: int) -> set[int]:
        """Ids of the tasks with a non-cancelled annotation: ids only, so cheap at any project size."""
        return {int(t["id"]) for page in self._pages(project_id, annotated=True, light=True, include="id",
                                                      page_size=10_000) for t in page}

    def annotated_changed_since(self, project_id: int, since: float) -> list[dict]:
        """Annotated tasks (full) whose ``updated_at`` is after ``since``: Label Studio bumps a task's
        ``updated_at`` whenever one of its annotations is created, updated or deleted
        (tasks/models.py, ``Annotation.update_task``)."""
        item = {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime",
                "value": ls_time(since)}
        return [t for page in self._pages(project_id, annotated=True, light=False, items=[item]) for t in page]

    def annotated_examples(self, project_id: int, spec: TaskSpec) -> list[Example]:
        return list(human_examples(self.iter_tasks(project_id, annotated=True), spec).values())

    def unlabeled_pages(self, project_id: int, with_predictions: bool = False) -> Iterator[list[dict]]:
        """Pages of the tasks without a non-cancelled annotation: ``id`` and ``data`` only (a
        light query, 5x faster than the full listing on 10,000 tasks), or with their predictions."""
        for page in self._pages(project_id, annotated=False, light=not with_predictions):
            yield _still_unlabeled(page)

    def unlabeled_tasks(self, project_id: int, with_predictions: bool = False) -> list[dict]:
        return [t for page in self.unlabeled_pages(project_id, with_predictions) for t in page]

    def unlabeled_page(self, project_id: int, page: int, page_size: int) -> tuple[list[dict], int]:
        """Page ``page`` (1-based) of the unlabelled tasks (id + data) and how many there are in all:
        one request whatever the project's size (a window of Label Studio's id-ordered listing)."""
        body = self._get_page(project_id, {"fields": "task_only", "include": "id,data", "page_size": page_size,
                                           "query": _query([_annotated_item(False)])}, page)
        return _still_unlabeled((body or {}).get("tasks") or []), int((body or {}).get("total") or 0)

    def unlabeled_sample(self, project_id: int, n: int, seed: int = 0,
                         page_size: int = LIGHT_PAGE_SIZE) -> list[dict]:
        """About ``n`` unlabelled tasks (id + data): at least ten seeded windows of the listing
        (at most ``page_size`` tasks each) spread over the pool, so the cost follows ``n``, not the
        project's size; the whole pool when it is not larger than ``n``."""
        size = max(1, min(page_size, math.ceil(n / 10)))
        first, total = self.unlabeled_page(project_id, 1, size)
        if total <= n:
            return first if total <= len(first) else self.unlabeled_tasks(project_id)
        n_windows = math.ceil(total / size)
        picked = np.random.default_rng([seed, n_windows]).choice(n_windows, math.ceil(n / size), replace=False)
        out: dict[int, dict] = {}
        for w in sorted(int(p) + 1 for p in picked):
            page = first if w == 1 else self.unlabeled_page(project_id, w, size)[0]
            out.update({int(t["id"]): t for t in page})
        return list(out.values())

    def import_predictions(self, project_id: int, predictions: list[dict[str, Any]]) -> int:
        """Write predictions (``task``, ``result``, ``score``, ``model_version``) in large chunks.

        Label Studio 1.23's import view recounts every task of the project per request (see
        ``IMPORT_CHUNK``): for a whole-pool write only; a queue of a few hundred goes through
        ``create_prediction``."""
        n = 0
        for i in range(0, len(predictions), IMPORT_CHUNK):
            chunk = predictions[i:i + IMPORT_CHUNK]
            # a large import is slow on a busy Label Studio: a generous timeout, since a timed-out
            # request that did land would be re-sent and write its predictions twice
            self._wrap(f"importing predictions into project {project_id}", self._request,
                       "POST", f"api/projects/{int(project_id)}/import/predictions", json=chunk,
                       request_options={"timeout_in_seconds": max(self.timeout, IMPORT_TIMEOUT)})
            n += len(chunk)
        return n

    def create_prediction(self, project_id: int, prediction: dict[str, Any]) -> int:
        """One prediction through ``POST /api/predictions/``; returns its id. Unlike the import view,
        this recounts only its own task and keeps the ``cluster`` field."""
        body = self._wrap(f"writing a prediction into project {project_id}", self._request,
                          "POST", "api/predictions/", json={**prediction, "project": int(project_id)})
        return int(body["id"])

    def _unless_gone(self, what: str, method: str, path: str, **kwargs) -> bool:
        """One call on an object that may have been deleted meanwhile: False on 404."""
        from label_studio_sdk.core.api_error import ApiError

        def call() -> bool:
            try:
                self._request(method, path, **kwargs)
                return True
            except ApiError as e:
                if e.status_code == 404:
                    return False
                raise

        return self._wrap(what, call)

    def update_prediction(self, prediction_id: int, fields: dict[str, Any]) -> bool:
        """Re-write a prediction in place (``PATCH /api/predictions/<id>/``); False when it is gone."""
        return self._unless_gone(f"writing a prediction ({prediction_id})", "PATCH",
                                 f"api/predictions/{int(prediction_id)}/", json=fields)

    def delete_prediction(self, prediction_id: int) -> bool:
        """Delete one prediction; False when it is already gone (404)."""
        return self._unless_gone(f"deleting prediction {prediction_id}", "DELETE",
                                 f"api/predictions/{int(prediction_id)}/")

    def delete_all_predictions_of(self, project_id: int, task_ids: list[int]) -> int:
        """Every prediction of the given tasks in one request (the data manager's
        ``delete_tasks_predictions`` action); returns how many Label Studio deleted."""
        body = self._wrap(f"deleting predictions in project {project_id}", self._request, "POST", "api/dm/actions",
                          params={"id": "delete_tasks_predictions", "project": int(project_id)},
                          json={"selectedItems": {"all": False, "included": [int(i) for i in task_ids]}})
        return int((body or {}).get("processed_items") or 0)

    def list_predictions(self, project_id: int) -> list[dict]:
        """Every prediction of the project (``/api/predictions/`` is not paginated in Label Studio
        1.23): for the periodic sweep only, its size grows with the project."""
        body = self._wrap(f"listing predictions of project {project_id}", self._request, "GET", "api/predictions/",
                          params={"project": int(project_id)},
                          request_options={"timeout_in_seconds": max(self.timeout, IMPORT_TIMEOUT)})
        return body if isinstance(body, list) else (body or {}).get("results") or []

    def set_model_version(self, project_id: int, version: str) -> None:
        """Make the project's model_version match our predictions, or uncertainty sampling is random."""
        self._wrap(f"setting model_version of project {project_id}", self._client.projects.update,
                   id=project_id, model_version=version)

    def project(self, project_id: int) -> dict:
        p = self._wrap(f"reading project {project_id}", self._client.projects.get, id=project_id)
        return p.model_dump() if hasattr(p, "model_dump") else dict(p)


def _still_unlabeled(page: list[dict]) -> list[dict]:
    """The filter relies on Label Studio's counters; the annotations, when listed, have the last word."""
    return [t for t in page if not any(not a.get("was_cancelled") for a in t.get("annotations") or [])]
