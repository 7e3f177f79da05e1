"""Configuration, read once from the environment and passed down (never ``os.getenv`` elsewhere).

| variable | default | meaning |
|---|---|---|
| `MODEL_DIR` | `./var` | where versions, project state, job records, LLM cache and ledger live (a shared volume when several workers run) |
| `LABEL_STUDIO_URL` | *(unset)* | Label Studio base URL the backend reads annotations from and writes predictions to |
| `LABEL_STUDIO_API_KEY` | *(unset)* | Label Studio token (legacy token or personal access token) |
| `BASIC_AUTH_USER` / `BASIC_AUTH_PASS` | *(unset)* | both set: every route but `/health` requires HTTP basic auth (as entered in LS's model settings); one without the other, or a password under 8 characters, stops start-up |
| `WEBHOOK_SECRET` | *(unset)* | project webhooks arrive without basic auth; register the backend as `http://host:9090/<secret>` and requests under that prefix are trusted; at least 16 URL-safe characters or start-up stops |
| `MAX_REQUEST_MB` | `100` | request body limit, chunked bodies included (413 above) |
| `REDIS_URL` | *(unset)* | set -> jobs run on RQ workers (`rq worker`); unset -> in a background thread of the server |
| `PREDICT_SOURCE` | `auto` | what `/predict` returns: `model` (local model), `llm`, `both` (LLM first, model as fallback), `auto` (= `both` when the LLM is on, else `model`) |
| `QUERY_STRATEGY` | `total_entropy` | active-learning strategy whose scores order Label Studio's queue (chosen on five languages: README, "On whole train sets") |
| `NER_MODEL` | `crf` (`backbone` when `NER_BACKBONE` is set) | served NER model: `crf` (CRF + word classes of the project's text), `tagger` (BiLSTM-CRF from scratch, same word classes), `backbone` (fine-tunes `NER_BACKBONE`); a project's extra param `ner_model` overrides it |
| `NER_BACKBONE` | *(unset)* | local path of a Hugging Face token-classification model to fine-tune instead of the from-scratch tagger |
| `NER_AUX_DATA` | *(unset)* | comma-separated labelled CoNLL files of related languages (e.g. MasakhaNER pcm, ibo, yor train sets) the NER model trains on beside the project's annotations; entity types the project lacks become O |
| `NER_AUX_MAX` | `2000` | sentences sampled from `NER_AUX_DATA` per training (each retrain pays for them) |
| `NER_CLUSTER_TEXTS` | `20000` | most unlabelled task texts the word classes are learnt from: a larger pool is sampled (seeded windows of Label Studio's listing), so a project's first training costs the same at 100,000 tasks as at 20,000; `0` = every task |
| `NER_MAX_EPOCHS` | `30` | epoch cap of the from-scratch tagger (early stopping usually stops sooner) |
| `TRAIN_MIN_ANNOTATIONS` | `1` | annotations a project needs before training starts |
| `TRAIN_EVERY_N` | `1` | annotation events since the last training started before another is queued (Start Training always trains) |
| `TRAIN_MIN_INTERVAL_S` | `auto` | least seconds between two training starts of a project; a trigger inside it is deferred, not dropped; `auto` = 2x the last training |
| `JOB_THREADS` / `TRAIN_THREADS` | `1` / cores - 1 | job threads of the in-process queue / torch threads of a training in the server |
| `JOB_BACKOFF_S` / `JOB_BACKOFF_MAX_S` / `JOB_RETRIES` | `10` / `300` / `3` | back-off and retries of jobs that failed on an unreachable upstream |
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


def _query_strategy(e: Mapping[str, str], ner_model: str) -> str:
    """QUERY_STRATEGY, checked at start-up: a known name whose model outputs NER_MODEL gives (BALD
    reads MC-dropout samples, which the CRF cannot give; it would fail at the first re-score)."""
    from model.active import get_strategy
    from model.local import lacking_outputs
    name = e.get("QUERY_STRATEGY", "total_entropy")
    try:
        strategy = get_strategy(name)
    except ValueError as exc:
        raise ValueError(f"QUERY_STRATEGY: {exc}") from None
    lacking = lacking_outputs(ner_model)
    for need in sorted(strategy.requires & lacking.keys()):
        raise ValueError(f"QUERY_STRATEGY={name} needs {lacking[need]}; NER_MODEL is {ner_model}: "
                         f"set NER_MODEL=tagger or another QUERY_STRATEGY")
    return name


MIN_WEBHOOK_SECRET = 16
MIN_BASIC_AUTH_PASS = 8
_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _auth_settings(e: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """BASIC_AUTH_USER, BASIC_AUTH_PASS, WEBHOOK_SECRET, refused at start-up when they would leave
    the backend open or guessable: half of the basic-auth pair set used to switch auth off without
    a word (every admin route answered anonymously), and a short secret is both guessable and,
    under 4 characters, impossible to redact from logs."""
    user, pw, secret = (e.get(k) or None for k in ("BASIC_AUTH_USER", "BASIC_AUTH_PASS", "WEBHOOK_SECRET"))
    if bool(user) != bool(pw):
        have, missing = ("BASIC_AUTH_USER", "BASIC_AUTH_PASS") if user else ("BASIC_AUTH_PASS", "BASIC_AUTH_USER")
        raise ValueError(f"{have} is set but {missing} is not: set both (every route but /health then "
                         "needs basic auth) or neither")
    if pw and len(pw) < MIN_BASIC_AUTH_PASS:
        raise ValueError(f"BASIC_AUTH_PASS is {len(pw)} characters; use at least {MIN_BASIC_AUTH_PASS}")
    if secret is not None:
        if len(secret) < MIN_WEBHOOK_SECRET:
            raise ValueError(f"WEBHOOK_SECRET is {len(secret)} characters; use at least {MIN_WEBHOOK_SECRET}, "
                             "e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'")
        if not set(secret) <= _URL_SAFE:
            raise ValueError("WEBHOOK_SECRET may hold only letters, digits and - . _ ~ (it is a URL path "
                             "segment)")
    return user, pw, secret


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
    query_strategy: str = "total_entropy"
    ner_model: str = "crf"
    ner_backbone: str | None = None
    ner_aux_data: tuple[str, ...] = ()
    ner_aux_max: int = 2000
    ner_cluster_texts: int = 20_000  # 0: learn the word classes from every unlabelled task
    ner_max_epochs: int = 30
    train_min_annotations: int = 1
    write_predictions: bool = True
    rescore_candidates: int = 2000  # 0: score and write the whole pool
    queue_size: int = 50
    full_sync_every: int = 20
    max_request_mb: float = 100.0
    log_level: str = "INFO"
    host: str = "0.0.0.0"
    port: int = 9090
    workers: int = 1
    threads: int = 8
    gunicorn_timeout: int = 120
    access_log: bool = False
    backend_url: str = "http://127.0.0.1:9090"  # where the CLI (python -m backend ...) finds the server
    job_threads: int = 1
    train_threads: int | None = None  # None: cores - 1 (>= 1)
    job_backoff_s: float = 10.0
    job_backoff_max_s: float = 300.0
    job_retries: int = 3
    train_every_n: int = 1
    train_min_interval_s: float | str = "auto"
    # RQ internals (README "Deploy and scale"); LAL_JOB_RUNNER is a hook of the deployment tests
    # and the worker benchmark: ``module:function`` run instead of backend.jobs.run_job
    job_heartbeat_ttl: int = 10
    reap_interval_s: float = 5.0
    worker_preload: bool = True
    job_runner: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        e = dict(os.environ if env is None else env)
        source = e.get("PREDICT_SOURCE", "auto").strip().lower()
        if source not in {"auto", "model", "llm", "both"}:
            raise ValueError(f"PREDICT_SOURCE={source!r}: expected one of auto, model, llm, both")
        user, pw, secret = _auth_settings(e)
        return cls(
            model_dir=Path(e.get("MODEL_DIR") or "var"),
            label_studio_url=(e.get("LABEL_STUDIO_URL") or None),
            label_studio_api_key=(e.get("LABEL_STUDIO_API_KEY") or None),
            basic_auth_user=user,
            basic_auth_pass=pw,
            webhook_secret=secret,
            redis_url=(e.get("REDIS_URL") or None),
            predict_source=source,
            query_strategy=_query_strategy(e, _ner_model(e)),
            ner_model=_ner_model(e),
            ner_backbone=(e.get("NER_BACKBONE") or None),
            ner_aux_data=_aux_files(e.get("NER_AUX_DATA")),
            ner_aux_max=int(e.get("NER_AUX_MAX", "2000")),
            ner_cluster_texts=max(0, int(e.get("NER_CLUSTER_TEXTS") or "20000")),
            ner_max_epochs=int(e.get("NER_MAX_EPOCHS", "30")),
            train_min_annotations=int(e.get("TRAIN_MIN_ANNOTATIONS", "1")),
            write_predictions=_bool(e.get("WRITE_PREDICTIONS"), True),
            rescore_candidates=max(0, int(e.get("RESCORE_CANDIDATES") or "2000")),
            queue_size=max(0, int(e.get("QUEUE_SIZE") or "50")),
            full_sync_every=max(1, int(e.get("FULL_SYNC_EVERY") or "20")),
            max_request_mb=float(e.get("MAX_REQUEST_MB") or "100"),
            log_level=e.get("LOG_LEVEL", "INFO").upper(),
            host=e.get("HOST") or "0.0.0.0",
            port=int(e.get("PORT") or "9090"),
            workers=int(e.get("WORKERS") or "1"),
            threads=int(e.get("THREADS") or "8"),
            gunicorn_timeout=int(e.get("GUNICORN_TIMEOUT") or "120"),
            access_log=_bool(e.get("ACCESS_LOG"), False),
            backend_url=e.get("BACKEND_URL") or "http://127.0.0.1:9090",
            job_threads=max(1, int(e.get("JOB_THREADS") or "1")),
            train_threads=int(e["TRAIN_THREADS"]) if e.get("TRAIN_THREADS") else None,
            job_backoff_s=float(e.get("JOB_BACKOFF_S") or "10"),
            job_backoff_max_s=float(e.get("JOB_BACKOFF_MAX_S") or "300"),
            job_retries=int(e.get("JOB_RETRIES") or "3"),
            train_every_n=int(e.get("TRAIN_EVERY_N") or "1"),
            train_min_interval_s=_interval(e.get("TRAIN_MIN_INTERVAL_S")),
            job_heartbeat_ttl=max(2, int(e.get("LAL_JOB_HEARTBEAT_TTL") or "10")),
            reap_interval_s=float(e.get("LAL_REAP_INTERVAL") or "5"),
            worker_preload=_bool(e.get("LAL_PRELOAD"), True),
            job_runner=e.get("LAL_JOB_RUNNER") or None,
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
