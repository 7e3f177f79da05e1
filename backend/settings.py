"""Configuration, read once from the environment and passed down (never ``os.getenv`` elsewhere).

| variable | default | meaning |
|---|---|---|
| `MODEL_DIR` | `./var` | where versions, project state, job records, LLM cache and ledger live (a shared volume when several workers run) |
| `LABEL_STUDIO_URL` | *(unset)* | Label Studio base URL the backend reads annotations from and writes predictions to |
| `LABEL_STUDIO_API_KEY` | *(unset)* | Label Studio token (legacy token or personal access token) |
| `BASIC_AUTH_USER` / `BASIC_AUTH_PASS` | *(unset)* | when both set, every route but `/health` requires HTTP basic auth (as entered in LS's model settings) |
| `WEBHOOK_SECRET` | *(unset)* | project webhooks arrive without basic auth; register the backend as `http://host:9090/<secret>` and requests under that prefix are trusted |
| `REDIS_URL` | *(unset)* | set -> jobs run on RQ workers (`rq worker`); unset -> in a background thread of the server |
| `PREDICT_SOURCE` | `auto` | what `/predict` returns: `model` (local model), `llm`, `both` (LLM first, model as fallback), `auto` (= `both` when the LLM is on, else `model`) |
| `QUERY_STRATEGY` | `least_confidence` | active-learning strategy whose scores order Label Studio's queue |
| `NER_MODEL` | `crf` (`backbone` when `NER_BACKBONE` is set) | served NER model: `crf` (CRF + word classes of the project's text), `tagger` (BiLSTM-CRF from scratch, same word classes), `backbone` (fine-tunes `NER_BACKBONE`); a project's extra param `ner_model` overrides it |
| `NER_BACKBONE` | *(unset)* | local path of a Hugging Face token-classification model to fine-tune instead of the from-scratch tagger |
| `NER_AUX_DATA` | *(unset)* | comma-separated labelled CoNLL files of related languages (e.g. MasakhaNER pcm, ibo, yor train sets) the NER model trains on beside the project's annotations; entity types the project lacks become O |
| `NER_AUX_MAX` | `2000` | sentences sampled from `NER_AUX_DATA` per training (each retrain pays for them) |
| `NER_MAX_EPOCHS` | `30` | epoch cap of the from-scratch tagger (early stopping usually stops sooner) |
| `TRAIN_MIN_ANNOTATIONS` | `1` | annotations a project needs before training starts |
| `WRITE_PREDICTIONS` | `true` | after each training, write scored predictions for unlabelled tasks and set the project's model_version |
| `RESCORE_CANDIDATES` | `2000` | unlabelled tasks scored per retrain (a rotating seeded sample + the current queue); `0` = the whole pool |
| `QUEUE_SIZE` | `50` | predictions written per retrain: the best-scored candidates (Label Studio's uncertainty queue) |
| `FULL_SYNC_EVERY` | `20` | fits between full re-reads of the annotated tasks and sweeps of superseded predictions |
| `LOG_LEVEL` | `INFO` | Python logging level |
| `PORT` | `9090` | gunicorn bind port (`HOST` `0.0.0.0`) |
| `WORKERS` / `THREADS` | `1` / `8` | gunicorn processes / threads per process |
| `LLM_*` | see `model/llm/config.py` | the LLM annotator (off when `LLM_API_KEY` is unset) |
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def _bool(v: str | None, default: bool) -> bool:
    return default if v is None or v == "" else v.strip().lower() in _TRUE


def _interval(v: str | None) -> float | str:
    """TRAIN_MIN_INTERVAL_S: seconds, or ``auto`` (twice the project's last training time)."""
    v = (v or "auto").strip().lower()
    if v == "auto":
        return v
    try:
        secs = float(v)
    except ValueError:
        raise ValueError(f"TRAIN_MIN_INTERVAL_S={v!r}: expected seconds or 'auto'") from None
    if secs < 0:
        raise ValueError(f"TRAIN_MIN_INTERVAL_S={v!r}: must be >= 0")
    return secs


def _ner_model(e: Mapping[str, str]) -> str:
    """NER_MODEL, checked at start-up; unset: ``backbone`` when NER_BACKBONE names one (what
    setting it alone meant before NER_MODEL existed), else ``crf``."""
    from model.local import NER_MODELS
    name = (e.get("NER_MODEL") or ("backbone" if e.get("NER_BACKBONE") else "crf")).strip().lower()
    if name not in NER_MODELS:
        raise ValueError(f"NER_MODEL={name!r}: expected one of {', '.join(NER_MODELS)}")
    if name == "backbone" and not e.get("NER_BACKBONE"):
        raise ValueError("NER_MODEL=backbone needs NER_BACKBONE (a local Hugging Face model folder)")
    return name


def _aux_files(v: str | None) -> tuple[str, ...]:
    """Comma-separated files that must exist: a typo fails at start-up, not at the first retrain."""
    paths = tuple(p.strip() for p in (v or "").split(",") if p.strip())
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ValueError(f"NER_AUX_DATA: no such file(s): {', '.join(missing)}")
    return paths


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path("var")
    label_studio_url: str | None = None
    label_studio_api_key: str | None = field(default=None, repr=False)
    basic_auth_user: str | None = None
    basic_auth_pass: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    predict_source: str = "auto"
    query_strategy: str = "least_confidence"
    ner_model: str = "crf"
    ner_backbone: str | None = None
    ner_aux_data: tuple[str, ...] = ()
    ner_aux_max: int = 2000
    ner_max_epochs: int = 30
    train_min_annotations: int = 1
    write_predictions: bool = True
    rescore_candidates: int = 2000  # 0: score and write the whole pool
    queue_size: int = 50
    full_sync_every: int = 20
    max_request_mb: float = 100.0
    log_level: str = "INFO"
    job_threads: int = 1
    train_threads: int | None = None  # None: cores - 1 (>= 1)
    job_backoff_s: float = 10.0
    job_backoff_max_s: float = 300.0
    job_retries: int = 3
    train_every_n: int = 1
    train_min_interval_s: float | str = "auto"
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        e = dict(os.environ if env is None else env)
        source = e.get("PREDICT_SOURCE", "auto").strip().lower()
        if source not in {"auto", "model", "llm", "both"}:
            raise ValueError(f"PREDICT_SOURCE={source!r}: expected one of auto, model, llm, both")
        return cls(
            model_dir=Path(e.get("MODEL_DIR") or "var"),
            label_studio_url=(e.get("LABEL_STUDIO_URL") or None),
            label_studio_api_key=(e.get("LABEL_STUDIO_API_KEY") or None),
            basic_auth_user=(e.get("BASIC_AUTH_USER") or None),
            basic_auth_pass=(e.get("BASIC_AUTH_PASS") or None),
            webhook_secret=(e.get("WEBHOOK_SECRET") or None),
            redis_url=(e.get("REDIS_URL") or None),
            predict_source=source,
            query_strategy=e.get("QUERY_STRATEGY", "least_confidence"),
            ner_model=_ner_model(e),
            ner_backbone=(e.get("NER_BACKBONE") or None),
            ner_aux_data=_aux_files(e.get("NER_AUX_DATA")),
            ner_aux_max=int(e.get("NER_AUX_MAX", "2000")),
            ner_max_epochs=int(e.get("NER_MAX_EPOCHS", "30")),
            train_min_annotations=int(e.get("TRAIN_MIN_ANNOTATIONS", "1")),
            write_predictions=_bool(e.get("WRITE_PREDICTIONS"), True),
            rescore_candidates=max(0, int(e.get("RESCORE_CANDIDATES") or "2000")),
            queue_size=max(0, int(e.get("QUEUE_SIZE") or "50")),
            full_sync_every=max(1, int(e.get("FULL_SYNC_EVERY") or "20")),
            max_request_mb=float(e.get("MAX_REQUEST_MB") or "100"),
            log_level=e.get("LOG_LEVEL", "INFO").upper(),
            job_threads=max(1, int(e.get("JOB_THREADS") or "1")),
            train_threads=int(e["TRAIN_THREADS"]) if e.get("TRAIN_THREADS") else None,
            job_backoff_s=float(e.get("JOB_BACKOFF_S") or "10"),
            job_backoff_max_s=float(e.get("JOB_BACKOFF_MAX_S") or "300"),
            job_retries=int(e.get("JOB_RETRIES") or "3"),
            train_every_n=int(e.get("TRAIN_EVERY_N") or "1"),
            train_min_interval_s=_interval(e.get("TRAIN_MIN_INTERVAL_S")),
            env=e,
        )

    @property
    def basic_auth_enabled(self) -> bool:
        return bool(self.basic_auth_user and self.basic_auth_pass)

    def secrets(self) -> list[str]:
        """Every secret value this process knows, so logging can redact them."""
        keys = ("LABEL_STUDIO_API_KEY", "BASIC_AUTH_PASS", "WEBHOOK_SECRET", "LLM_API_KEY")
        vals = [self.env.get(k) for k in keys]
        return [v for v in vals if v and len(v) >= 4]
