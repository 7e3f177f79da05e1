"""Fixtures of the fault suite: a fake Label Studio API with switchable faults, a small trained
model to seed stores with (so most tests need no training of their own), and a backend process
wired to the fake."""
from __future__ import annotations

import shutil

import pytest

from devtools.fakels import FakeLabelStudio
from tests.faults.harness import FAST_TRAINING, hausa


@pytest.fixture
def fake_ls():
    fake = FakeLabelStudio().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A real ``LocalModel`` (NER, 30 Hausa sentences, 1 epoch) saved to disk once per session."""
    import torch

    from model.local import LocalModel
    from model.types import Example, Span
    from backend.label_config import parse_label_config
    from tests.conftest import NER_CONFIG

    torch.set_num_threads(1)
    spec = parse_label_config(NER_CONFIG)
    examples = [Example(text=t, spans=[Span(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                                       for r in regs], choices=[], task_id=i + 1)
                for i, (t, regs) in enumerate(hausa(30))]
    model = LocalModel(spec, ner_params={"max_epochs": 1}).fit(examples)
    d = tmp_path_factory.mktemp("tiny-model") / "model"
    model.save(d)
    return d


def seed_version(model_dir, project: int, src, label_config: str | None = None) -> str:
    """Publish ``src`` (a saved LocalModel) as the project's next version through the real store."""
    from backend.model_store import ModelStore
    from tests.conftest import NER_CONFIG

    store = ModelStore(model_dir)
    store.save_project(project, label_config=label_config or NER_CONFIG)
    return store.save_version(project, lambda d: shutil.copytree(src, d, dirs_exist_ok=True) and None,
                              {"event": "seed", "n_examples": 30})


@pytest.fixture
def ls_env(fake_ls):
    return {**FAST_TRAINING, "LABEL_STUDIO_URL": fake_ls.url, "LABEL_STUDIO_API_KEY": fake_ls.token}
