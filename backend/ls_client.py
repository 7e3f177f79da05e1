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
from collections.abc import Iterator
from typing import Any

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from backend.errors import UpstreamError
from model.spec import TaskSpec
from model.types import Example, Span

log = logging.getLogger(__name__)
PAGE_SIZE = 500  # full listing (annotations + predictions): a page stays a few MB
LIGHT_PAGE_SIZE = 2_000  # id + text only; pages small enough to predict one while reading the next
# Label Studio 1.23's import view recounts the predictions of EVERY task of the project after each
# request (data_import/api.py, update_tasks_counters): ~10 s per request at 10,000 tasks whatever
# the request's size (10,000 predictions: 11 s in one request, 46 s in four, 142 s in twenty), so
# predictions go in as few requests as possible.
IMPORT_CHUNK = 10_000
IMPORT_TIMEOUT = 300.0


def _annotated_filter(annotated: bool) -> str:
    """Data-manager query selecting tasks with (or without) a non-cancelled annotation."""
    return json.dumps({"filters": {"conjunction": "and", "items": [
        {"filter": "filter:tasks:total_annotations", "operator": "greater" if annotated else "equal",
         "type": "Number", "value": 0}]}})


def _transient(exc: BaseException) -> bool:
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ApiError) and (exc.status_code or 0) in (429, 500, 502, 503, 504)


_retry = retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(4),
               wait=wait_exponential(multiplier=0.5, max=8), reraise=True)


def example_from_task(task: dict, spec: TaskSpec) -> Example | None:
    """The latest non-cancelled human annotation of ``task`` as an ``Example`` (None if none)."""
    anns = [a for a in (task.get("annotations") or []) if not a.get("was_cancelled")]
    if not anns:
        return None
    ann = max(anns, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
    key = (spec.ner or spec.choices).value_key
    text = (task.get("data") or {}).get(key)
    if not isinstance(text, str):
        return None
    spans: list[Span] = []
    choices: list[str] = []
    for r in ann.get("result") or []:
        v = r.get("value") or {}
        if spec.ner and r.get("from_name") == spec.ner.from_name and "start" in v and "end" in v:
            for label in v.get("labels") or []:
                s, e = int(v["start"]), int(v["end"])
                if 0 <= s < e <= len(text):
                    spans.append(Span(s, e, label))
        elif spec.choices and r.get("from_name") == spec.choices.from_name:
            choices.extend(v.get("choices") or [])
    return Example(text=text, spans=spans, choices=choices, task_id=task.get("id"))


def human_examples(tasks: list[dict], spec: TaskSpec) -> dict[int, Example]:
    """Task id -> its latest human annotation as an ``Example``, for the tasks that have one."""
    return {t["id"]: ex for t in tasks if (ex := example_from_task(t, spec)) is not None}


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

    def _pages(self, project_id: int, *, annotated: bool | None, light: bool) -> Iterator[list[dict]]:
        """Pages of ``/api/tasks``, one request each (a transient failure re-reads that page)."""
        params: dict[str, Any] = {"project": project_id}
        if light:
            params.update(fields="task_only", include="id,data", page_size=LIGHT_PAGE_SIZE)
        else:
            params.update(fields="all", page_size=PAGE_SIZE)
        if annotated is not None:
            params["query"] = _annotated_filter(annotated)

        from label_studio_sdk.core.api_error import ApiError

        def get(page: int) -> dict | None:
            try:
                return self._request("GET", "api/tasks/", params={**params, "page": page})
            except ApiError as e:  # Label Studio answers 404 past the last page
                if e.status_code == 404 and page > 1:
                    return None
                raise

        seen, page = 0, 1
        while True:
            body = self._wrap(f"listing tasks of project {project_id}", get, page)
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

    def annotated_examples(self, project_id: int, spec: TaskSpec) -> list[Example]:
        return list(human_examples(self.iter_tasks(project_id, annotated=True), spec).values())

    def unlabeled_pages(self, project_id: int, with_predictions: bool = False) -> Iterator[list[dict]]:
        """Pages of the tasks without a non-cancelled annotation: ``id`` and ``data`` only (a
        light query, 5x faster than the full listing on 10,000 tasks), or with their predictions."""
        for page in self._pages(project_id, annotated=False, light=not with_predictions):
            # the filter relies on Label Studio's counters; the annotations, when listed, have the last word
            yield [t for t in page if not any(not a.get("was_cancelled") for a in t.get("annotations") or [])]

    def unlabeled_tasks(self, project_id: int, with_predictions: bool = False) -> list[dict]:
        return [t for page in self.unlabeled_pages(project_id, with_predictions) for t in page]

    def import_predictions(self, project_id: int, predictions: list[dict[str, Any]]) -> int:
        """Write predictions (``task``, ``result``, ``score``, ``model_version``) in large chunks."""
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

    def set_model_version(self, project_id: int, version: str) -> None:
        """Make the project's model_version match our predictions, or uncertainty sampling is random."""
        self._wrap(f"setting model_version of project {project_id}", self._client.projects.update,
                   id=project_id, model_version=version)

    def project(self, project_id: int) -> dict:
        p = self._wrap(f"reading project {project_id}", self._client.projects.get, id=project_id)
        return p.model_dump() if hasattr(p, "model_dump") else dict(p)
