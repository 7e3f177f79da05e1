"""The queue writer without a real Label Studio (fake LS, devtools/fakels.py): a rotating
candidate sample that reaches every task, QUEUE_SIZE predictions per write, superseded ones deleted
by id, annotated tasks' predictions kept, a failed deletion retried at the next write. The same
behaviour against the real Label Studio: tests/e2e/test_scale_label_studio.py."""
from __future__ import annotations

from tests.faults.conftest import fake_ls, tiny_model  # noqa: F401 (fixtures)
from tests.faults.harness import hausa


def _writer(fake, tmp_path, candidates=20, queue_size=5):
    from backend.ls_client import LabelStudioClient
    from backend.model_store import ModelStore
    from backend.predictions import PredictionWriter

    client = LabelStudioClient(fake.url, fake.token)
    return PredictionWriter(client, ModelStore(tmp_path / "var"), "least_confidence", candidates=candidates,
                            queue_size=queue_size, sweep_every=1000), client


def test_rotating_sample_reaches_every_task_and_the_queue_stays_bounded(fake_ls, tiny_model, tmp_path):  # noqa: F811
    from backend.label_config import parse_label_config
    from model.local import LocalModel
    from tests.conftest import NER_CONFIG

    texts = [t for t, _ in hausa(60)]
    ids = fake_ls.add_tasks(1, texts)
    model = LocalModel.load(tiny_model)
    seen: set[str] = set()
    predict = model.predict
    model.predict = lambda batch: (seen.update(batch), predict(batch))[1]
    writer, client = _writer(fake_ls, tmp_path)
    spec = parse_label_config(NER_CONFIG)

    mine = lambda: [p for p in fake_ls.predictions[1] if str(p.get("model_version", "")).startswith("v")]  # noqa: E731
    out = writer.write(1, spec, "v1", model)
    assert out["tasks"] == 5 and 20 <= out["scored"] <= 25
    assert len(mine()) == 5 and fake_ls.model_version[1] == "v1"
    # a task of the queue gets annotated: what its annotator saw stays, whatever comes next
    queued = mine()[0]
    fake_ls.annotate(1, queued["task"], [])
    for k in range(2, 9):
        out = writer.write(1, spec, f"v{k}", model)
        assert out["tasks"] == 5 and out["delete_failed"] == 0
        on_unlabelled = [p for p in mine() if p["task"] != queued["task"]]
        assert len(on_unlabelled) == 5 and {p["model_version"] for p in on_unlabelled} == {f"v{k}"}
        assert any(p["id"] == queued["id"] for p in mine())
    # 8 writes x 4 windows of 5 tasks: every unlabelled task was scored (a cycle of 12 windows
    # covers the pool once; a window boundary shifted by the annotation is caught by the next cycle)
    assert seen >= {t for t, tid in zip(texts, ids) if tid != queued["task"]}


def test_a_failed_deletion_never_fails_the_write_and_is_retried(fake_ls, tiny_model, tmp_path):  # noqa: F811
    from backend.label_config import parse_label_config
    from model.local import LocalModel
    from tests.conftest import NER_CONFIG

    fake_ls.add_tasks(1, [t for t, _ in hausa(40)])
    model = LocalModel.load(tiny_model)
    writer, client = _writer(fake_ls, tmp_path, candidates=10, queue_size=5)
    spec = parse_label_config(NER_CONFIG)
    writer.write(1, spec, "v1", model)
    real = client.delete_prediction
    client.delete_prediction = lambda pid: (_ for _ in ()).throw(ConnectionError("Label Studio restarting"))
    out = writer.write(1, spec, "v2", model)
    assert fake_ls.model_version[1] == "v2" and out["tasks"] == 5
    stale = [p for p in fake_ls.predictions[1] if p["model_version"] == "v1"]
    assert out["delete_failed"] == len(stale) > 0  # the queue moved on; the old ones wait
    client.delete_prediction = real
    out = writer.write(1, spec, "v3", model)
    assert out["delete_failed"] == 0
    assert {p["model_version"] for p in fake_ls.predictions[1]} == {"v3"}


def test_the_writer_scores_the_candidate_sample_the_simulation_draws(fake_ls, tmp_path):  # noqa: F811
    """Measure what is served: over consecutive retrains the backend reads the same windows of
    Label Studio's listing that ``model.simulation`` picks from (``--candidates``), one cycle
    reaching every task."""
    import numpy as np

    from model.active.candidates import sample_pool

    texts = [f"jumla ta {i} a Kano." for i in range(57)]
    ids = fake_ls.add_tasks(1, texts)
    writer, _ = _writer(fake_ls, tmp_path, candidates=12)  # windows of 3 tasks, 19 windows
    pool = np.arange(len(ids))
    ledger = {"written": {}, "rotation": 0, "pool_total": 0}
    rotation = total = 0
    served_all: set[int] = set()
    for _ in range(5):
        served = sorted(ids.index(int(t["id"])) for t in writer._sample(1, ledger, with_preds=False))
        sim, rotation, total = sample_pool(pool, 12, rotation, total)
        assert served == sorted(sim) and len(served) == 12
        served_all.update(served)
    # the first read learns the listing's size; the next 19 windows are one cycle over the pool
    assert ledger["rotation"] == rotation == 19 and served_all == set(range(57))
