"""A fake Label Studio HTTP API: exactly the calls the backend's ``ls_client`` makes through
label-studio-sdk 2.1, with faults that can be switched on while the backend runs.

Served: ``GET /api/tasks/?project=&fields=&include=&query=&page=&page_size=`` (``query`` filters
on ``total_annotations`` and ``selectedItems`` as Label Studio's data manager does, other filters
are ignored, so a listing may return more; 404 past the last page), ``POST /api/projects/<id>/import/predictions``,
``POST /api/predictions/`` (answers the prediction with its id), ``DELETE /api/predictions/<id>/``,
``GET /api/predictions/?project=``, ``POST /api/dm/actions?id=delete_tasks_predictions``, ``PATCH /api/projects/<id>/`` and ``GET /api/projects/<id>/``. Every request must carry
``Authorization: Token <token>``. ``fault`` is one of ``None``, ``"401"``, ``"500"``, ``"drop"``
(close the connection without an answer: what an unreachable or crashing host looks like to
httpx) and applies to every API call until cleared; ``fault_paths`` narrows it to paths containing
one of the given substrings (e.g. ``"import/predictions"``), ``fault_projects`` to calls about the
given project ids (``?project=`` or ``/api/projects/<id>/``): Label Studio down for some projects.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeLabelStudio:
    def __init__(self, token: str = "fake-ls-token-0123456789"):
        self.token = token
        self.lock = threading.Lock()
        self.tasks: dict[int, list[dict]] = {}  # project -> tasks
        self.model_version: dict[int, str] = {}
        self.predictions: dict[int, list[dict]] = {}
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.fault: str | None = None
        self.fault_paths: tuple[str, ...] = ()
        self.fault_projects: frozenset[int] = frozenset()
        self._httpd: ThreadingHTTPServer | None = None
        self._next_ann = 1
        self._next_pred = 1

    # -- state -----------------------------------------------------------------------------------
    def add_tasks(self, project: int, texts: list[str]) -> list[int]:
        with self.lock:
            lst = self.tasks.setdefault(project, [])
            base = sum(len(v) for v in self.tasks.values()) + 1
            ids = []
            for i, t in enumerate(texts):
                lst.append({"id": base + i, "data": {"text": t}, "annotations": [], "predictions": [],
                            "project": project})
                ids.append(base + i)
            return ids

    def annotate(self, project: int, task_id: int, result: list[dict]) -> int:
        """Add (or replace, like an update) the annotation of a task; returns its id."""
        with self.lock:
            task = next(t for t in self.tasks[project] if t["id"] == task_id)
            ann_id = self._next_ann
            self._next_ann += 1
            task["annotations"] = [{"id": ann_id, "result": result, "was_cancelled": False,
                                    "created_at": f"2026-01-01T00:00:{ann_id % 60:02d}Z",
                                    "updated_at": f"2026-01-01T00:{ann_id // 60 % 60:02d}:{ann_id % 60:02d}Z",
                                    "task": task_id, "project": project}]
            return ann_id

    def n_annotated(self, project: int) -> int:
        with self.lock:
            return sum(1 for t in self.tasks.get(project, []) if t["annotations"])

    def count(self, method: str, needle: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.calls if m == method and needle in p)

    # -- server ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeLabelStudio":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _send(self, status: int, body) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with fake.lock:
                    fake.calls.append((self.command, self.path, status))

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                url = urlparse(self.path)
                fault = fake.fault
                if fault and fake.fault_projects:
                    about = parse_qs(url.query).get("project", [""])[0]
                    segs = [p for p in url.path.split("/") if p]
                    if segs[:2] == ["api", "projects"] and len(segs) > 2:
                        about = segs[2]
                    if not (about.isdigit() and int(about) in fake.fault_projects):
                        fault = None
                if fault and (not fake.fault_paths or any(p in url.path for p in fake.fault_paths)):
                    if fault == "drop":
                        with fake.lock:
                            fake.calls.append((self.command, self.path, 0))
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    return self._send(int(fault), {"detail": f"injected {fault}"})
                if self.headers.get("Authorization") != f"Token {fake.token}":
                    return self._send(401, {"detail": "Authentication credentials were not provided."})
                parts = [p for p in url.path.split("/") if p]
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts[:2] == ["api", "predictions"]:
                    return fake._predictions(self, parts[2:], q, raw)
                if parts[:3] == ["api", "dm", "actions"] and q.get("id") == "delete_tasks_predictions":
                    ids = set((json.loads(raw or b"{}").get("selectedItems") or {}).get("included") or [])
                    with fake.lock:
                        preds = fake.predictions.get(int(q.get("project", 0)), [])
                        gone = [p for p in preds if p.get("task") in ids]
                        for p in gone:
                            preds.remove(p)
                    return self._send(200, {"processed_items": len(gone)})
                if parts[:2] == ["api", "tasks"] and self.command == "GET":
                    body = fake._list(q)
                    return self._send(200, body) if body is not None else self._send(404, {"detail": "Invalid page."})
                if parts[:2] == ["api", "projects"] and len(parts) >= 3 and parts[2].isdigit():
                    pid = int(parts[2])
                    if parts[3:] == ["import", "predictions"] and self.command == "POST":
                        preds = json.loads(raw or b"[]")
                        with fake.lock:
                            fake.predictions.setdefault(pid, []).extend(preds)
                        return self._send(201, {"created": len(preds)})
                    if len(parts) == 3 and self.command in ("PATCH", "GET"):
                        if self.command == "PATCH":
                            body = json.loads(raw or b"{}")
                            if "model_version" in body:
                                fake.model_version[pid] = body["model_version"]
                        return self._send(200, {"id": pid, "title": f"project {pid}",
                                                "model_version": fake.model_version.get(pid, "")})
                return self._send(404, {"detail": "Not found."})

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="fake-ls", daemon=True).start()
        return self

    def _predictions(self, handler, rest: list[str], q: dict, raw: bytes) -> None:
        """``/api/predictions/``: create one (with an id), delete one by id, list a project's."""
        if handler.command == "POST" and not rest:
            pred = json.loads(raw or b"{}")
            with self.lock:
                pred["id"] = self._next_pred
                self._next_pred += 1
                self.predictions.setdefault(int(pred.get("project") or 0), []).append(pred)
            return handler._send(201, pred)
        if handler.command == "DELETE" and len(rest) == 1 and rest[0].isdigit():
            with self.lock:
                for preds in self.predictions.values():
                    hit = [p for p in preds if p.get("id") == int(rest[0])]
                    for p in hit:
                        preds.remove(p)
                    if hit:
                        break
                else:
                    return handler._send(404, {"detail": "Not found."})
            return handler._send(204, None)
        if handler.command == "GET" and not rest:
            with self.lock:
                preds = [dict(p) for p in self.predictions.get(int(q.get("project", 0)), []) if "id" in p]
            return handler._send(200, preds)
        return handler._send(404, {"detail": "Not found."})

    def _list(self, q: dict) -> dict:
        pid = int(q.get("project", 0))
        page, size = int(q.get("page", 1)), int(q.get("page_size", 100))
        with self.lock:
            tasks = [json.loads(json.dumps(t)) for t in self.tasks.get(pid, [])]
            by_task: dict[int, list[dict]] = {}
            for p in self.predictions.get(pid, []):
                if "id" in p:  # those written through /api/predictions/ are listed with their task
                    by_task.setdefault(p["task"], []).append(dict(p))
        for t in tasks:
            t["predictions"] = t.get("predictions", []) + by_task.get(t["id"], [])
        for t in tasks:
            t["total_annotations"] = sum(1 for a in t["annotations"] if not a.get("was_cancelled"))
        query = json.loads(q.get("query") or "{}")
        selected = query.get("selectedItems") or {"all": True}
        if not selected.get("all", True):
            keep_ids = set(selected.get("included") or [])
            tasks = [t for t in tasks if t["id"] in keep_ids]
        for item in query.get("filters", {}).get("items", []):
            if item["filter"] == "filter:tasks:total_annotations":
                op, v = item["operator"], item["value"]
                tasks = [t for t in tasks if (t["total_annotations"] > v if op == "greater"
                                              else t["total_annotations"] == v)]
        if q.get("fields", "task_only") != "all":
            keep = set((q.get("include") or "id,data").split(","))
            tasks = [{k: v for k, v in t.items() if k in keep} for t in tasks]
        chunk = tasks[(page - 1) * size: page * size]
        if page > 1 and not chunk:
            return None
        return {"tasks": chunk, "total": len(tasks), "total_annotations": 0, "total_predictions": 0}

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
