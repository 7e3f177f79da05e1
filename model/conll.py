"""Readers for the datasets in ``../shared``: CoNLL NER files and MasakhaNEWS TSV files."""
from __future__ import annotations

import csv
from pathlib import Path


def read_conll(path: str | Path, columns: int = 1) -> list[tuple[list[str], ...]]:
    """Sentences from a CoNLL file: ``token TAG [TAG ...]`` per line, blank line between sentences.

    Returns one tuple per sentence: ``(tokens, tags_col1[, tags_col2 ...])`` with ``columns`` tag
    columns (MasakhaNER 2.0 has 1; the multi-annotator files have 2 or 3). Lines with fewer tag
    columns than asked are padded with "O" so a missing annotator never shifts the others.
    """
    sentences: list[tuple[list[str], ...]] = []
    cur: list[list[str]] = [[] for _ in range(columns + 1)]
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                if cur[0]:
                    sentences.append(tuple(cur))
                    cur = [[] for _ in range(columns + 1)]
                continue
            cur[0].append(parts[0])
            for c in range(columns):
                cur[c + 1].append(parts[c + 1] if len(parts) > c + 1 else "O")
    if cur[0]:
        sentences.append(tuple(cur))
    return sentences


def read_news_tsv(path: str | Path) -> tuple[list[str], list[str]]:
    """MasakhaNEWS ``category, headline, text, url`` rows -> (texts, labels); text = headline + body."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(f"{row['headline']}\n{row['text']}")
            labels.append(row["category"])
    return texts, labels
