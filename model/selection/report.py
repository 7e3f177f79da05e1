"""The selection report: ``selection.json`` (every figure), ``report.md`` + ``report.html`` (for
people), and PNG plots (matplotlib, Agg backend: no display needed on a server).

The Markdown is the single source; the HTML is rendered from it by a small converter for the
few constructs used here (headings, tables, lists, images, paragraphs), with all text escaped,
so a candidate name can never inject markup.
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

from model.agreement import describe_nan


def _num(x, digits: int = 3, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f}" if pct else f"{x:.{digits}f}"


def _req(m: dict) -> str:
    r = m.get("request_error_rate", 0.0)
    return f" (of which request errors {r:.1%})" if r else ""


def format_usd(x) -> str:
    return "unknown (cached)" if x is None or math.isnan(x) or math.isinf(x) else f"${x:.4f}"


def _ci(pair, pct: bool = False) -> str:
    if not pair or any(v is None or math.isnan(v) for v in pair):
        return ""
    return f" [{_num(pair[0], pct=pct)}, {_num(pair[1], pct=pct)}]"


def _plots(doc: dict, plot_dir: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    names = [r["name"] for r in doc["decision"]["ranking"]]
    mets = {n: doc["candidates"][n]["metrics"] for n in names}
    winner = doc["decision"]["winner"]
    out = {}

    fig, ax = plt.subplots(figsize=(6, 4))
    for n in names:
        m = mets[n]
        f1, lo_hi = m["f1_mean"], m["f1_ci"]
        if math.isnan(f1) or math.isnan(m["cost_per_1k_usd"]):
            continue
        err = (None if math.isnan(lo_hi[0]) else
               [[100 * max(f1 - lo_hi[0], 0)], [100 * max(lo_hi[1] - f1, 0)]])
        ax.errorbar(m["cost_per_1k_usd"], 100 * f1, yerr=err,
                    fmt="*" if n == winner else "o", markersize=14 if n == winner else 7, capsize=3)
        ax.annotate(n, (m["cost_per_1k_usd"], 100 * f1), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel("cost per 1,000 sentences (USD)")
    ax.set_ylabel("entity F1, mean over runs (95 % CI)")
    ax.set_title("Entity F1 vs cost (star = chosen)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(plot_dir / "f1_vs_cost.png", dpi=110)
    plt.close(fig)
    out["f1_vs_cost"] = "plots/f1_vs_cost.png"

    series = [("alpha_runs", "alpha across runs"), ("fleiss_kappa_runs", "Fleiss' kappa across runs"),
              ("kappa_gold_mean", "Cohen's kappa vs gold"), ("alpha_with_gold", "alpha runs + gold")]
    ci_keys = {"alpha_runs": "alpha_runs_ci", "fleiss_kappa_runs": "fleiss_kappa_runs_ci",
               "kappa_gold_mean": "kappa_gold_ci", "alpha_with_gold": "alpha_with_gold_ci"}
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 * len(names) + 2), 4))
    width = 0.8 / len(series)
    for j, (key, label) in enumerate(series):
        vals = [mets[n][key] for n in names]
        lo = [v - mets[n][ci_keys[key]][0] if not math.isnan(mets[n][ci_keys[key]][0]) else 0 for n, v in zip(names, vals)]
        hi = [mets[n][ci_keys[key]][1] - v if not math.isnan(mets[n][ci_keys[key]][1]) else 0 for n, v in zip(names, vals)]
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(names))]
        ax.bar(xs, [0 if math.isnan(v) else v for v in vals], width,
               yerr=[[0 if math.isnan(x) else max(x, 0) for x in lo], [0 if math.isnan(x) else max(x, 0) for x in hi]],
               capsize=2, label=label)
        for x, v in zip(xs, vals):
            if math.isnan(v):
                ax.text(x, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
    human = doc.get("human_reference") or []
    if human:
        alphas = [h["alpha"] for h in human if not math.isnan(h["alpha"])]
        if alphas:
            ax.axhspan(min(alphas), max(alphas), color="grey", alpha=0.2, label="human alpha (range)")
    ax.axhline(doc["decision"]["rule"]["min_alpha"], color="red", ls="--", lw=1, label="rule: min alpha")
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set_ylim(min(0, ax.get_ylim()[0]), 1.05)
    ax.set_title("Agreement per candidate (95 % bootstrap CI)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(plot_dir / "agreement.png", dpi=110)
    plt.close(fig)
    out["agreement"] = "plots/agreement.png"

    types = sorted({t for n in names for t in mets[n]["per_type"]})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(types) * max(1, len(names) / 3)), 4))
    width = 0.8 / max(len(names), 1)
    for j, n in enumerate(names):
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(types))]
        vals = [mets[n]["per_type"].get(t, {}).get("f1_mean", math.nan) for t in types]
        ax.bar(xs, [0 if math.isnan(v) else 100 * v for v in vals], width, label=n)
    ax.set_xticks(range(len(types)), types)
    ax.set_ylabel("entity F1, mean over runs")
    ax.set_title("Per-type entity F1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot_dir / "per_type_f1.png", dpi=110)
    plt.close(fig)
    out["per_type_f1"] = "plots/per_type_f1.png"
    return out


def render_markdown(doc: dict, plots: dict[str, str]) -> str:
    dec = doc["decision"]
    s = doc["sample"]
    lines = ["# LLM annotator selection", ""]
    if dec["winner"]:
        w = doc["candidates"][dec["winner"]]["candidate"]
        lines.append(f"**Chosen: `{dec['winner']}`** (model `{w['model']}` at `{w['base_url']}`).")
    else:
        lines.append("**No candidate met the rule's conditions; no annotator was chosen.**")
    lines += ["", f"Rule: {dec['rule_text']}.", "",
              f"Gold sample: {s['drawn']} sentences ({s.get('tokens', '?')} tokens) from {s['source']}, "
              f"sampler `{s['sampler']}` (seed {s['seed']}; {s['eligible']} of {s['pool']} sentences "
              f"eligible{'; short by ' + str(s['shortfall']) if s.get('shortfall') else ''}). "
              f"Each candidate annotated every sentence {doc['runs']} times. Entity types: "
              f"{', '.join(doc['labels'])}. Confidence intervals: 95 % bootstrap over sentences "
              f"({doc['n_boot']} resamples, seed {doc['seed']}).", "", "## Ranking", "",
              "| # | candidate | entity F1 (mean over runs) [95 % CI] | F1 of majority vote | token acc. | "
              "Cohen's kappa vs gold | alpha across runs | Fleiss' kappa across runs | failed answers | "
              "repaired | cost / 1k sent. | verdict |",
              "|---:|---|---|---:|---:|---|---|---|---:|---:|---:|---|"]
    for r in dec["ranking"]:
        m = doc["candidates"][r["name"]]["metrics"]
        verdict = "chosen" if r["name"] == dec["winner"] else "; ".join(r["reasons"]) or "-"
        lines.append(
            f"| {r['rank']} | {r['name']} | {_num(m['f1_mean'], pct=True)}{_ci(m['f1_ci'], True)} | "
            f"{_num(m['f1_majority'], pct=True)} | {_num(m['token_accuracy_mean'])} | "
            f"{_num(m['kappa_gold_mean'])}{_ci(m['kappa_gold_ci'])} | {_num(m['alpha_runs'])}{_ci(m['alpha_runs_ci'])} | "
            f"{_num(m['fleiss_kappa_runs'])}{_ci(m['fleiss_kappa_runs_ci'])} | {m['format_failure_rate']:.1%}"
            f"{_req(m)} | "
            f"{m['repair_rate']:.1%} | {format_usd(m['cost_per_1k_usd'])} | {verdict} |")
    for name, err in (doc.get("errors") or {}).items():
        lines.append(f"| - | {name} | not run: {err} | | | | | | | | | |")
    lines += ["", "F1 in points (0-100), strict seqeval IOB2; a sentence lost to a failure (unparseable "
              "reply after repair and re-asks, or a failed request) counts as all-O against gold. "
              "Alpha across runs is the rule's self-agreement figure.", "",
              "## More figures", "",
              "| candidate | precision | recall | entity-token acc. (paper's AL metric) | alpha runs + gold | "
              "observed agreement across runs | span self-consistency | sentences failed in any run | "
              "latency p50 / p95 (s) | tokens in / out per 1k sent. |", "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in dec["ranking"]:
        m = doc["candidates"][r["name"]]["metrics"]
        lines.append(
            f"| {r['name']} | {_num(m['precision_mean'], pct=True)} | {_num(m['recall_mean'], pct=True)} | "
            f"{_num(m['entity_token_accuracy_mean'])} | {_num(m['alpha_with_gold'])}{_ci(m['alpha_with_gold_ci'])} | "
            f"{_num(m['percent_agreement_runs'])} | {_num(m['span_consistency'])} | "
            f"{m['sentences_failed_any_run']} / {m['n_sentences']} | {_num(m['latency_p50_s'], 2)} / "
            f"{_num(m['latency_p95_s'], 2)} | {_num(m['tokens_in_per_1k'], 0)} / {_num(m['tokens_out_per_1k'], 0)} |")
    notes = []
    for r in dec["ranking"]:
        m = doc["candidates"][r["name"]]["metrics"]
        if m["format_failure_rate"] >= 1.0:
            notes.append(f"{r['name']}: every run failed, so no agreement across runs can be measured")
        elif math.isnan(m["alpha_runs"]):
            notes.append(f"{r['name']}: {describe_nan(math.nan, 'alpha across runs')}; observed "
                         f"agreement across runs {_num(m['percent_agreement_runs'])}")
    if notes:
        lines += ["", "Figures shown n/a: " + "; ".join(notes) + "."]
    types = sorted({t for r in dec["ranking"] for t in doc["candidates"][r["name"]]["metrics"]["per_type"]})
    if types:
        lines += ["", "## Per-type entity F1 (mean over runs / majority vote)", "",
                  "| candidate | " + " | ".join(types) + " |", "|---|" + "---:|" * len(types)]
        for r in dec["ranking"]:
            pt = doc["candidates"][r["name"]]["metrics"]["per_type"]
            lines.append(f"| {r['name']} | " + " | ".join(
                f"{_num(pt.get(t, {}).get('f1_mean', math.nan), pct=True)} / "
                f"{_num(pt.get(t, {}).get('f1_majority', math.nan), pct=True)}" for t in types) + " |")
    human = doc.get("human_reference")
    if human:
        from model.human_agreement import format_table

        alphas = [h["alpha"] for h in human]
        lines += ["", "## Human reference (MasakhaNER multi-annotator files)", "",
                  f"Human annotators agree with Krippendorff's alpha {min(alphas):.3f}-{max(alphas):.3f} "
                  f"across {len(human)} languages (token level, same definitions as above).", ""]
        same = [h for h in human if doc.get("language") and h["language"].lower() == str(doc["language"]).lower()]
        if same:
            lines += [f"Same language ({same[0]['language']}): human alpha {same[0]['alpha']:.3f}, pairwise "
                      f"Cohen's kappa {same[0]['kappa_mean']:.3f}, pairwise entity F1 {100 * same[0]['f1_mean']:.1f}.", ""]
        kappa_h = sum(h["kappa_mean"] for h in human) / len(human)
        for r in dec["ranking"]:
            m = doc["candidates"][r["name"]]["metrics"]
            a, kg = m["alpha_runs"], m["kappa_gold_mean"]
            if math.isnan(a):
                lines.append(f"- {r['name']}: no agreement across runs to compare "
                             f"({m['format_failure_rate']:.0%} format failures).")
                continue
            rel = ("within the human range" if a >= min(alphas)
                   else f"{min(alphas) - a:.3f} below the lowest human figure")
            lines.append(f"- {r['name']}: self-agreement alpha {_num(a)} ({rel}); Cohen's kappa vs gold "
                         f"{_num(kg)} (human pairwise kappa, mean over languages: {kappa_h:.3f}).")
        lines += ["", format_table(human)]
    lines += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()]
    if doc.get("env_file"):
        lines += ["", f"The chosen annotator's settings were written to `{doc['env_file']}` "
                  "(base URL, model, prices, temperature, and the *name* of the key variable; never the key)."]
    return "\n".join(lines) + "\n"


def markdown_to_html(md: str, title: str = "LLM annotator selection") -> str:
    """Minimal converter for the constructs ``render_markdown`` emits; every text is escaped."""
    def inline(t: str) -> str:
        t = html.escape(t)
        t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
        t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
        return re.sub(r"\*(.+?)\*", r"<em>\1</em>", t)

    out, table, items = [], [], []

    def flush() -> None:
        if table:
            rows = [r for r in table if not re.fullmatch(r"\|[\s:|-]+\|", r)]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            out.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells[0]) +
                       "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r)
                                                        + "</tr>" for r in cells[1:]) + "</tbody></table>")
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if m := re.match(r"(#+) (.*)", line):
            n = len(m.group(1))
            out.append(f"<h{n}>{inline(m.group(2))}</h{n}>")
        elif m := re.fullmatch(r"!\[(.*?)\]\((.*?)\)", line):
            out.append(f'<p><img alt="{html.escape(m.group(1))}" src="{html.escape(m.group(2))}"></p>')
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;"
             "font-size:90%}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def write_report(doc: dict, out_dir: str | Path) -> dict[str, str]:
    """Write selection.json, plots/*.png, report.md, report.html; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "selection.json").write_text(
        json.dumps(_strict(doc), indent=1, allow_nan=False, default=_json_default), encoding="utf-8")
    plots = _plots(doc, out_dir / "plots") if doc["decision"]["ranking"] else {}
    md = render_markdown(doc, plots)
    (out_dir / "report.md").write_text(md, encoding="utf-8")
    (out_dir / "report.html").write_text(markdown_to_html(md), encoding="utf-8")
    return {"json": str(out_dir / "selection.json"), "markdown": str(out_dir / "report.md"),
            "html": str(out_dir / "report.html"), **{k: str(out_dir / v) for k, v in plots.items()}}


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _strict(o):
    """NaN/inf -> null, so selection.json is strict JSON that any client (JS included) can read."""
    if isinstance(o, dict):
        return {k: _strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_strict(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o.item() if hasattr(o, "item") else o
