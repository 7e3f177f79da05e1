"""Webhook storm: 1,000 annotation events in a few seconds for one project, against the real
gunicorn backend. Every webhook must be answered inside Label Studio's 1 s timeout without error,
training must coalesce (at most one running plus one waiting), and the final model must have been
trained on every annotation."""
from __future__ import annotations

import pytest

from tests.faults.harness import hausa, serving, setup, storm, wait_idle

pytestmark = pytest.mark.slow
N_TASKS, N_EVENTS = 150, 1000


def test_webhook_storm_loses_nothing(fake_ls, ls_env, backend_process):
    data = hausa(N_TASKS)
    ids = fake_ls.add_tasks(1, [t for t, _ in data] + [t for t, _ in hausa(20, skip=N_TASKS)])
    be = backend_process(ls_env)
    setup(be.url, 1)

    st = storm(be.url, fake_ls, 1, ids[:N_TASKS], [r for _, r in data], n_events=N_EVENTS, threads=20)
    assert st["errors"] == [] and set(st["statuses"]) == {201}, (st["errors"][:5], set(st["statuses"]))
    assert st["in_time"] == N_EVENTS, f"slowest webhook {st['max']:.3f}s; Label Studio gives up after 1 s"
    assert st["max_active"] <= 2, f"{st['max_active']} training jobs active at once"

    jobs = wait_idle(be.url, 1, timeout=400)
    trains = [j for j in jobs if j["kind"] == "train"]
    assert [j for j in trains if j["status"] != "finished"] == []
    assert 1 <= len(trains) <= 8, f"{len(trains)} trainings for one storm: coalescing failed"
    newest = serving(be.url, 1)
    final = newest["versions"][-1]
    assert newest["serving"]["version"] == final["version"]
    assert final["n_examples"] == N_TASKS, "the final model missed annotations"
    assert fake_ls.n_annotated(1) == N_TASKS
    # the newest version's predictions were written for the 20 unlabelled tasks, queue ordered by it
    assert fake_ls.model_version[1] == final["version"]
    written = [p for p in fake_ls.predictions[1] if p["model_version"] == final["version"]]
    assert sorted(p["task"] for p in written) == ids[N_TASKS:]
