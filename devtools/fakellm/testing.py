"""Helpers shared by the LLM tests and the benchmark: a gold slice, annotator factory, scoring."""
from __future__ import annotations

from pathlib import Path

from model.conll import read_conll
from model.llm.annotator import LLMAnnotator
from model.llm.config import LLMConfig
from model.spec import NERControl, TaskSpec
from model.tokenize import bio_to_spans, join_tokens
from model.shared_data import MASAKHANER2

HAU_DEV = MASAKHANER2 / "hau" / "dev.txt"
LABELS = ("PER", "ORG", "LOC", "DATE")
NER_SPEC = TaskSpec(ner=NERControl("label", "text", "text", LABELS))


def gold_slice(n: int, path: Path = HAU_DEV, skip: int = 0):
    """``(sentences, gold_dict, texts, gold_spans)`` for the first ``n`` sentences of ``path``."""
    sents = read_conll(path)[skip:skip + n]
    gold = {tuple(toks): tags for toks, tags in sents}
    texts, spans = [], []
    for toks, tags in sents:
        text, tokens = join_tokens(toks)
        texts.append(text)
        spans.append({(s.start, s.end, s.label) for s in bio_to_spans(tokens, tags)})
    return sents, gold, texts, spans


def make_annotator(base_url: str, store: Path, model: str = "perfect", **env) -> LLMAnnotator:
    cfg = {"LLM_BASE_URL": base_url, "LLM_API_KEY": "sk-test-not-a-secret", "LLM_MODEL": model,
           "LLM_TIMEOUT_S": "5", "LLM_MAX_RETRIES": "2"}
    cfg.update({k: str(v) for k, v in env.items()})
    return LLMAnnotator(LLMConfig.from_env(cfg), store)


def span_f1(pred: list[set], gold: list[set]) -> float:
    tp = sum(len(p & g) for p, g in zip(pred, gold))
    n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 1.0
