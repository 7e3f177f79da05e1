"""The model shape Label Studio ML backend users know: ``setup``, ``predict(tasks, context)``,
``fit(event, data)`` — for every project, on top of the model store, the local model and the LLM.

One ``MLBackend`` lives per process (``runtime()``); it owns the per-process cache of loaded
models, so a request never reloads a model that is already in memory.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from backend.errors import BadRequest, Conflict
from backend.label_config import parse_label_config
from backend.model_store import ModelStore, ServingCache
from backend.ls_json import llm_prediction, regions_for
from backend.predictions import PredictionWriter
from backend.superseded import record_llm_version
from backend.settings import Settings
from model.active.registry import get_strategy
from model.local import NER_MODELS, LocalModel, lacking_outputs
from model.spec import TaskSpec

log = logging.getLogger(__name__)


class MLBackend:
    def __init__(self, settings: Settings):
        get_strategy(settings.query_strategy)  # Settings checked it; a Settings built by hand too
        self.settings = settings
        self.store = ModelStore(settings.model_dir)
        self.cache = ServingCache(self.store, LocalModel.load)
        self._llm = None
        self._llm_lock = threading.Lock()
        # /predict threads that may wait on the LLM at once: three quarters stay free for /health
        # and /webhook (Label Studio gives those 1 s) however slow or dead the LLM is
        self._llm_slots = threading.BoundedSemaphore(max(1, settings.threads // 4))

    # -- LLM (optional) ------------------------------------------------------------------------
    @property
    def llm(self):
        """The LLM annotator, created on first use (no network call at start-up)."""
        if self._llm is None:
            with self._llm_lock:
                if self._llm is None:
                    from model.llm.annotator import LLMAnnotator
                    from model.llm.config import LLMConfig

                    self._llm = LLMAnnotator(LLMConfig.from_env(llm_env(self.settings)),
                                             self.settings.model_dir / "llm")
        return self._llm

    def llm_status(self) -> dict:
        try:
            return self.llm.status()
        except Exception as e:  # a broken LLM config must not take /health down
            return {"enabled": False, "reason": f"LLM configuration error: {e}"}

    def source_policy(self) -> str:
        s = self.settings.predict_source
        if s == "auto":
            return "both" if self.llm_status().get("enabled") else "model"
        return s

    # -- setup ---------------------------------------------------------------------------------
    def spec_for(self, project_id: int, label_config: str | None) -> tuple[TaskSpec, str]:
        config = label_config or self.store.project(project_id).get("label_config")
        if not config:
            raise BadRequest(f"project {project_id}: no label_config in the request and none stored; "
                             "Label Studio sends it on /setup when the backend is connected")
        return parse_label_config(config), config

    def setup(self, project_id: int, label_config: str | None, hostname: str | None,
              extra_params: Any = None) -> str:
        spec, config = self.spec_for(project_id, label_config)
        stored = self.store.project(project_id)
        if isinstance(extra_params, str) and extra_params.strip():
            try:
                extra_params = json.loads(extra_params)
            except ValueError:
                raise BadRequest("extra_params must be a JSON object, e.g. {\"language\": \"Hausa\"}") from None
        extra = extra_params if isinstance(extra_params, dict) else None
        if extra and "query_strategy" in extra:
            try:
                get_strategy(str(extra["query_strategy"]))
            except ValueError as e:  # unknown name -> 400 listing the allowed ones
                raise BadRequest(f"extra_params.query_strategy: {e}") from None
        if extra and "ner_model" in extra and extra["ner_model"] not in NER_MODELS:
            raise BadRequest(f"extra_params.ner_model: {extra['ner_model']!r} is not one of {', '.join(NER_MODELS)}")
        if extra and extra.get("ner_model") == "backbone" and not self.settings.ner_backbone:
            raise BadRequest("extra_params.ner_model: 'backbone' needs NER_BACKBONE set on the backend")
        strategy_name = str((extra or {}).get("query_strategy", self.settings.query_strategy))
        ner_model = str((extra or {}).get("ner_model", self.settings.ner_model))
        lacking = lacking_outputs(ner_model if spec.ner is not None else None)
        for need in sorted(get_strategy(strategy_name).requires & lacking.keys()):
            raise BadRequest(f"query_strategy {strategy_name!r} needs {lacking[need]}; this project's model is "
                             f"{ner_model if spec.ner is not None else 'the text classifier'}: set extra_params "
                             f"ner_model or choose another query_strategy")
        # connected=True: only a project connected through /setup lets a webhook change its label config
        if (stored.get("label_config") != config or stored.get("hostname") != hostname
                or (extra is not None and stored.get("extra_params") != extra) or not stored.get("connected")):
            self.store.save_project(project_id, label_config=config, hostname=hostname, extra_params=extra,
                                    connected=True)
        return self.model_version(project_id)

    def project_option(self, project_id: int, key: str, default: Any = None) -> Any:
        """A per-project option from the "Extra params" JSON of Label Studio's model settings
        (e.g. {"language": "Hausa", "query_strategy": "margin"}), else ``default``."""
        extra = self.store.project(project_id).get("extra_params") or {}
        return extra.get(key, default) if isinstance(extra, dict) else default

    def model_version(self, project_id: int) -> str:
        return self.store.serving_version(project_id) or "untrained"

    # -- predict -------------------------------------------------------------------------------
    def predict(self, project_id: int, tasks: list[dict], label_config: str | None,
                context: dict | None = None) -> dict:
        """One prediction per task, in order; ``results`` is empty when nothing can predict yet
        (so Label Studio stores nothing and asks again once a model exists)."""
        spec, _ = self.spec_for(project_id, label_config)
        texts = [self._text_of(t, spec) for t in tasks]
        policy = self.source_policy()
        notes: list[str] = []
        results: list[dict | None] = [None] * len(tasks)
        sources: set[str] = set()
        if policy in ("llm", "both"):
            llm_results, note = self._predict_llm(project_id, spec, texts)
            if note:
                notes.append(note)
            for i, r in enumerate(llm_results):
                if r is not None:
                    results[i] = r
                    sources.add("llm")
        if policy in ("model", "both") and any(r is None for r in results):
            version, model = self.cache.get(project_id)
            if model is None:
                notes.append("no local model trained yet: submit annotations or press Start Training")
            else:
                idx = [i for i, r in enumerate(results) if r is None]
                preds = model.predict([texts[i] for i in idx])
                for i, p in zip(idx, preds):
                    results[i] = {"result": regions_for(spec, texts[i], p.spans, p.choices),
                                  "score": round(float(p.score), 6), "model_version": version}
                sources.add("model")
        if any(r is None for r in results):
            # all or nothing: Label Studio drops the lot when counts differ, so say why instead
            return {"results": [], "source": "none", "detail": "; ".join(notes) or "no predictor available",
                    "model_version": self.model_version(project_id)}
        return {"results": results, "source": "+".join(sorted(sources)),
                "model_version": self.model_version(project_id), **({"detail": "; ".join(notes)} if notes else {})}

    @staticmethod
    def _text_of(task: dict, spec: TaskSpec) -> str:
        key = (spec.ner or spec.choices).value_key
        text = (task.get("data") or {}).get(key)
        if not isinstance(text, str):
            raise BadRequest(f"task {task.get('id')}: data.{key} must be a string (the <Text> value of the config)")
        return text

    def _predict_llm(self, project_id: int, spec: TaskSpec, texts: list[str]) -> tuple[list[dict | None], str | None]:
        status = self.llm_status()
        if not status.get("enabled"):
            return [None] * len(texts), f"LLM is off: {status.get('reason', 'not configured')}"
        limit = int(self.settings.env.get("LLM_PREDICT_MAX_TASKS", "20"))
        if len(texts) > limit:
            return [None] * len(texts), (f"{len(texts)} tasks in one request exceed LLM_PREDICT_MAX_TASKS={limit}: "
                                         "run the bulk pre-annotation job (POST /jobs/prelabel) instead")
        cap = self.llm.config.max_chars_per_task
        idx = [i for i, t in enumerate(texts) if len(t) <= cap]
        notes = [] if len(idx) == len(texts) else [
            f"{len(texts) - len(idx)} task(s) longer than LLM_MAX_CHARS_PER_TASK={cap} characters: "
            "not sent to the LLM (the local model answers them; the bulk job POST /jobs/prelabel has no cap)"]
        results: list[dict | None] = [None] * len(texts)
        if not idx:
            return results, notes[0]
        paused = self.llm.client.paused()  # the endpoint is known to be down: not even tokenized
        if paused:
            return results, "; ".join(notes + [paused])
        if not self._llm_slots.acquire(blocking=False):
            return results, "; ".join(notes + ["LLM busy: every /predict LLM slot (THREADS / 4) is waiting on it"])
        label_map = self.project_option(project_id, "label_map")
        try:
            out = self.llm.annotate([texts[i] for i in idx], spec, project=str(project_id),
                                    language=self.project_option(project_id, "language"),
                                    label_map=label_map if isinstance(label_map, dict) else None, scope="predict")
        except Exception as e:  # budget exhausted or provider down: the local model keeps serving
            return results, "; ".join(notes + [f"LLM unavailable: {e}"])
        finally:
            self._llm_slots.release()
        for i, r in zip(idx, out):
            results[i] = llm_prediction(spec, texts[i], r)
        for v in {r["model_version"] for r in results if r}:  # Label Studio stores what /predict returns
            record_llm_version(self.store, project_id, v)
        errors = [r.error for r in out if r.error]
        if errors:
            notes.append(f"LLM failed on {len(errors)} task(s): {errors[0]}")
        unknown = sorted({lab for r in out for lab in r.unknown_labels})
        if unknown:
            notes.append(f"LLM labels outside the project read as O: {', '.join(unknown)} "
                         "(map them with the extra param label_map)")
        return results, "; ".join(notes) or None

    def prediction_writer(self, project_id: int, client) -> PredictionWriter:
        """The queue writer for a project: its query strategy (extra param ``query_strategy`` or
        ``QUERY_STRATEGY``) and the ``RESCORE_CANDIDATES`` / ``QUEUE_SIZE`` budget."""
        s = self.settings
        return PredictionWriter(client, self.store, self.project_option(project_id, "query_strategy", s.query_strategy),
                                candidates=s.rescore_candidates, queue_size=s.queue_size,
                                sweep_every=s.full_sync_every)

    # -- fit -----------------------------------------------------------------------------------
    def ner_model(self, project_id: int) -> str:
        """The project's extra param ``ner_model`` (checked on /setup), else NER_MODEL."""
        return str(self.project_option(project_id, "ner_model", self.settings.ner_model))

    def _unlabelled_texts(self, client, project_id: int, spec: TaskSpec, pool: list | None,
                          ner_model: str) -> tuple[Any, int | None]:
        """The unlabelled tasks' texts the NER model learns word classes from, and how many there
        are: the pool routing already listed, else a function listing them that ``LocalModel``
        calls only when its cached classes are not fresh for that many (one light request for
        the count instead of a listing of the whole pool per retrain); above
        ``NER_CLUSTER_TEXTS`` tasks a seeded sample of that many (listing 100,000 tasks costs Label
        Studio ~30 s, learning from them ~10 s, for classes 20,000 sentences already give); none
        for a backbone or a classifier."""
        if spec.ner is None or ner_model == "backbone":
            return [], None
        key = spec.ner.value_key

        def texts(tasks: list[dict]) -> list[str]:
            return [t["data"][key] for t in tasks if isinstance((t.get("data") or {}).get(key), str)]
        if pool is not None:
            return texts(pool), None
        n = client.unlabeled_page(project_id, 1, 1)[1]
        cap = self.settings.ner_cluster_texts
        if cap and n > cap:  # a sample: the classes then cost the same at 100,000 tasks as at 20,000
            return (lambda: texts(client.unlabeled_sample(project_id, cap))), cap
        return (lambda: texts(client.unlabeled_tasks(project_id))), n

    def fit(self, project_id: int, event: str = "START_TRAINING", data: dict | None = None) -> dict:
        """Train on the project's current human annotations (read from Label Studio), publish the
        version atomically, then write scored predictions so Label Studio's queue follows it."""
        from backend import live_agreement
        from backend.ls_client import LabelStudioClient
        from backend.ls_json import human_examples
        from backend.training_data import AnnotationSet

        t0 = time.perf_counter()
        spec, config = self.spec_for(project_id, None)
        client = LabelStudioClient(self.settings.label_studio_url, self.settings.label_studio_api_key)
        # the annotated tasks with their predictions: only those changed since the last fit are read
        annotated, synced = AnnotationSet(self.store, project_id, self.settings.full_sync_every).sync(client)
        human = human_examples(annotated, spec)
        agreement = live_agreement.update(self.store, project_id, spec, annotated, human)
        if len(human) < max(1, self.settings.train_min_annotations):
            return {"status": "skipped", "reason": f"{len(human)} annotated task(s); "
                    f"TRAIN_MIN_ANNOTATIONS={self.settings.train_min_annotations}"}
        auto: list = []
        pool = None  # unlabelled tasks, listed here only when routing needs their LLM predictions
        if self.project_option(project_id, "routing", False):
            key = (spec.ner or spec.choices).value_key
            pool = client.unlabeled_tasks(project_id, with_predictions=True)
            auto = live_agreement.auto_accepted(self.store, project_id, spec, pool, agreement, key)
        examples = list(human.values()) + auto
        with self.store.lock(project_id, "train") as got:
            if not got:
                raise Conflict(f"project {project_id} is being trained by another worker")
            ner_model = self.ner_model(project_id)
            model = LocalModel(spec, ner_model=ner_model, ner_backbone=self.settings.ner_backbone,
                               ner_params={"max_epochs": self.settings.ner_max_epochs}
                               if ner_model == "tagger" else {},
                               ner_aux=self.settings.ner_aux_data,
                               ner_aux_max=self.settings.ner_aux_max)
            unlabelled, n_unlabelled = self._unlabelled_texts(client, project_id, spec, pool, ner_model)
            model.fit(examples, unlabelled_texts=unlabelled, n_unlabelled=n_unlabelled,
                      cluster_dir=self.store.project_dir(project_id) / "clusters")
            meta = {"event": event, "metrics": model.metrics_, "n_examples": len(examples),
                    "n_human": len(human), "auto_accepted_task_ids": sorted(e.task_id for e in auto),
                    "live_agreement": {k: v.get("entity_f1") for k, v in agreement.get("sources", {}).items()}}
            version = self.store.save_version(project_id, lambda d: model.save(d), meta)
        out = {"status": "trained", "version": version, "n_examples": len(examples), "n_auto_accepted": len(auto),
               "fit_seconds": model.metrics_.get("fit_seconds"), "serving": self.store.serving_version(project_id),
               "annotations_read": synced}
        if self.settings.write_predictions and out["serving"] == version:
            out["written"] = self.prediction_writer(project_id, client).write(project_id, spec, version, model, pool)
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out


def llm_env(settings: Settings) -> dict[str, str]:
    """The environment for the LLM annotator: the process env, overridden by the selection run's
    winner file (``LLM_ENV_FILE``, default ``MODEL_DIR/llm.env``) when it exists. That file names
    the variable holding the key (``LLM_API_KEY_ENV``), never the key itself."""
    env = dict(settings.env)
    path = Path(env.get("LLM_ENV_FILE") or settings.model_dir / "llm.env")
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#") and key.startswith("LLM_"):
                env[key.strip()] = value.strip()
        log.info("LLM settings from %s", path)
    key_var = env.get("LLM_API_KEY_ENV")
    if key_var and env.get(key_var):
        env["LLM_API_KEY"] = env[key_var]
    return env


_RUNTIME: MLBackend | None = None
_RUNTIME_LOCK = threading.Lock()


def runtime(settings: Settings | None = None) -> MLBackend:
    """The process-wide backend (built once; jobs in RQ workers build theirs from the environment)."""
    global _RUNTIME
    with _RUNTIME_LOCK:
        if _RUNTIME is None or (settings is not None and _RUNTIME.settings is not settings):
            _RUNTIME = MLBackend(settings or Settings.from_env())
        return _RUNTIME
