"""Human inter-annotator agreement on MasakhaNER's multi-annotator files: the reference line.

The files (``../shared/data/masakhaner-iaa/<language>.txt``) hold ``token TAG_1 TAG_2 [TAG_3]``:
two or three real annotators per token. An LLM whose runs agree with each other *less* than
humans agree with one another is noisier than a human team; one that agrees with gold about as
well as humans agree pairwise is as good as a second annotator. So the selection report shows
the same figures (from ``model.agreement``) for both.

Per language: pairwise Cohen's kappa (each pair, and the mean), Fleiss' kappa and Krippendorff's
alpha over all annotators, observed agreement, pairwise entity F1 (strict IOB2; F1 is symmetric
in which annotator is the reference), all at token level over the whole file.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

from model import agreement as ag
from model.conll import read_conll
from model.shared_data import MASAKHANER_IAA

DEFAULT_DIR = MASAKHANER_IAA


def _n_columns(path: Path) -> int:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                return len(line.split()) - 1
    return 0


def language_agreement(path: str | Path) -> dict:
    """All human agreement figures of one multi-annotator file."""
    path = Path(path)
    k = _n_columns(path)
    if k < 2:
        raise ValueError(f"{path.name}: needs >= 2 annotator columns, found {k}")
    sents = read_conll(path, columns=k)
    raters = [[t for s in sents for t in s[j + 1]] for j in range(k)]
    by_sentence = [[list(s[j + 1]) for s in sents] for j in range(k)]
    pair_kappa, pair_f1 = {}, {}
    for a, b in itertools.combinations(range(k), 2):
        key = f"{a + 1}-{b + 1}"
        pair_kappa[key] = ag.cohen_kappa(raters[a], raters[b])
        pair_f1[key] = ag.entity_scores(by_sentence[a], by_sentence[b])["f1"]
    return {
        "language": path.stem.replace("_", " "),
        "file": path.name,
        "annotators": k,
        "sentences": len(sents),
        "tokens": len(raters[0]),
        "pairwise_kappa": pair_kappa,
        "kappa_mean": sum(pair_kappa.values()) / len(pair_kappa),
        "fleiss_kappa": ag.fleiss_kappa(raters),
        "alpha": ag.krippendorff_alpha(raters),
        "percent_agreement": ag.percent_agreement(raters),
        "pairwise_f1": pair_f1,
        "f1_mean": sum(pair_f1.values()) / len(pair_f1),
    }


def human_reference(directory: str | Path = DEFAULT_DIR, languages: list[str] | None = None,
                    cache: str | Path | None = None) -> list[dict]:
    """Figures for every ``*.txt`` in ``directory`` (or the named languages), sorted by name.

    ``cache``: a JSON file reused when it lists exactly these files with the same sizes (the
    whole table takes ~1 minute on 2 shared cores; reports are regenerated far more often)."""
    directory = Path(directory)
    files = sorted(directory.glob("*.txt"))
    if languages:
        wanted = {x.lower() for x in languages}
        files = [f for f in files if f.stem.lower() in wanted]
    stamp = {f.name: f.stat().st_size for f in files}
    if cache and Path(cache).is_file():
        saved = json.loads(Path(cache).read_text(encoding="utf-8"))
        if saved.get("files") == stamp:
            return saved["table"]
    table = [language_agreement(f) for f in files]
    if cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        Path(cache).write_text(json.dumps({"files": stamp, "table": table}, indent=1), encoding="utf-8")
    return table


def format_table(table: list[dict]) -> str:
    """Markdown table of the human reference (one row per language)."""
    lines = ["| language | annotators | sentences | tokens | pairwise Cohen's kappa (mean) | "
             "Fleiss' kappa | Krippendorff's alpha | observed agreement | pairwise entity F1 (mean) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        pk = ", ".join(f"{k}: {v:.3f}" for k, v in r["pairwise_kappa"].items())
        lines.append(f"| {r['language']} | {r['annotators']} | {r['sentences']:,} | {r['tokens']:,} | "
                     f"{r['kappa_mean']:.3f} ({pk}) | {ag.describe_nan(r['fleiss_kappa'])} | "
                     f"{ag.describe_nan(r['alpha'])} | {r['percent_agreement']:.3f} | "
                     f"{100 * r['f1_mean']:.1f} |")
    return "\n".join(lines)
