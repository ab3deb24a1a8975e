"""The Sort-of-CLEVR results tables (the grid, the full-budget fusions, the paper) from the checkpoints' metrics.json.

Read by the app's Compare and Model card tabs, printed by the grid runner (mmdemo.experiments.grid), and README's results
block (`python -m mmdemo.results readme`).
"""

from __future__ import annotations

import json
from pathlib import Path

from mmdemo.checkpoint import DEFAULT, METRICS, ROOT
from mmdemo.config import CELLS, FUSIONS, ModelConfig

GRID_ROOT = ROOT / "sort-of-clevr"
FULL_ROOT = GRID_ROOT / "full"  # sum / concat / attention at the default's full budget
FULL_SEEDS = (0, 1)
PAPER = [  # (model, non-relational, relational, closest/furthest), from the spec's reference table
    ("CNN+MLP (paper)", "~94%", "63%", "52.3%"),
    ("CNN+RN (paper)", ">94%", ">94%", "-"),
    ("CNN+MLP (a public reimplementation, 100 epochs)", "66%", "66%", "-"),
    ("CNN+RN (a public reimplementation, 20 epochs)", "99%", "89%", "-"),
]


def paper_table() -> str:
    """Markdown: the reference results on the original (binary-question) Sort-of-CLEVR."""
    rows = ["| model | non\u2011relational | relational | closest / furthest |", "|---|---|---|---|"]
    return "\n".join(rows + [f"| {m} | {a} | {b} | {c} |" for m, a, b, c in PAPER])


def grid_folder(fusion: str, cell: str) -> Path:
    return GRID_ROOT / f"{fusion}-{cell}"


def full_folder(fusion: str, seed: int) -> Path:
    """Where a full-budget fusion model lives; attention with seed 0 is the shipped default itself."""
    return DEFAULT if (fusion, seed) == ("attention", 0) else FULL_ROOT / f"{fusion}-s{seed}"


GRID_BUDGET = "2 ep, static text, reads ahead"
FULL_BUDGET = "full (16 ep, default recipe)"


def trained_models() -> list[tuple[str, str, Path]]:
    """(name, budget, folder) of the typed Sort-of-CLEVR models compared, in the one order the Compare tab and
    the results table show: the default, the other fusions at its full budget seed by seed, then the
    reduced-budget grid. Folders that may not be trained yet are the caller's to skip."""
    full = [(f"{f}-gru seed {s}", FULL_BUDGET, full_folder(f, s)) for s in FULL_SEEDS for f in FUSIONS]
    full.sort(key=lambda row: row[2] != DEFAULT)  # stable: the default first, the rest as they were
    return [*full, *[(f"{f}-{c}", GRID_BUDGET, grid_folder(f, c)) for f in FUSIONS for c in CELLS]]


def compared_models() -> list[tuple[str, str, Path]]:
    """What the Compare tab runs: trained_models(), with the shipped default named "default"."""
    return [("default" if folder == DEFAULT else name, budget, folder) for name, budget, folder in trained_models()]


def pct(v: float | None) -> str:
    """0.9775 -> '97.8%'; None -> 'n/a'."""
    return "n/a" if v is None else f"{100 * v:.1f}%"


def results_table() -> str:
    """Markdown: the grid and the full-budget fusion models (each row says its budget) beside the paper's numbers."""
    rows = ["| model | budget | non\u2011relational | relational | closest / furthest | count | overall | grounding | causal | train time |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    folders = [*trained_models(), ("hop2-unheld (previous default)", "full, hop 2 at the colour word only", GRID_ROOT / "hop2-unheld"),
               ("reads-ahead", "full, reads ahead", GRID_ROOT / "reads-ahead")]
    for name, budget, folder in folders:
        path = folder / METRICS
        if not path.is_file():
            rows.append(f"| {name} | {budget} | (not trained) | | | | | | | |")
            continue
        m = json.loads(path.read_text())
        secs = m.get("train_seconds")
        name = f"**{name} (default)**" if folder == DEFAULT else name
        rows.append(
            f"| {name} | {budget} | {pct(m['nonrelational'])} | {pct(m['relational'])} | {pct(m['closest_furthest'])} | "
            f"{pct(m['count'])} | {pct(m['overall'])} | {pct(m['grounding'])} | {pct(m.get('causal'))} | {'' if secs is None else f'{secs / 60:.1f} min'} |"
        )
    for name, nonrel, rel, cf in PAPER:
        rows.append(f"| {name} | | {nonrel} | {rel} | {cf} | | | | | |")
    return "\n".join(rows)


FAITH_HEADERS = ["model", "training", "look from", "follows", "ignores", "follows (remove)", "ignores (remove)",
                 "attention on named", "IG on named", "Grad-CAM on named", "IG on answer object"]


def faithfulness_rows(root: Path = ROOT) -> list[list[str]]:
    """One row per compared model (compared_models' order) from the `faithfulness` entry of its metrics.json (the
    faithfulness command, `--write`); a model not measured yet says so."""
    rows = []
    for name, budget, folder in compared_models():
        entry = _metrics(root / folder.relative_to(ROOT)).get("faithfulness") or {}
        f = entry.get("overall")
        if not f:
            rows.append([name, budget, "(not measured)", *[""] * (len(FAITH_HEADERS) - 3)])
            continue
        look = "Grad-CAM" if entry.get("attribution", "").startswith("Grad-CAM") else "attention"
        rows.append([name, budget, look, *(pct(f.get(k)) for k in ("follows", "ignores", "follows_remove", "ignores_remove",
                                                                    "pointing_attention_named", "pointing_ig_named",
                                                                    "pointing_gradcam_named", "pointing_ig_answer"))])
    return rows


def faithfulness_table(root: Path = ROOT) -> str:
    """Markdown of faithfulness_rows: the Compare tab and docs/RESULTS.md show the same table."""
    lines = ["| " + " | ".join(FAITH_HEADERS) + " |", "|" + "---|" * len(FAITH_HEADERS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in faithfulness_rows(root)])


# ------------------------------------------------------------------------------------------ README's results

README_BEGIN = "<!-- results: written by `python -m mmdemo.results readme`; tests/test_results.py checks it -->"
README_END = "<!-- /results -->"


def share(v: float | None) -> str:
    """0.9625 -> '96.25%', 0.996 -> '99.6%', 1.0 -> '100%' (as measured, no rounding beyond 2 decimals); None -> 'n/a'."""
    return "n/a" if v is None else f"{100 * v:.2f}".rstrip("0").rstrip(".") + "%"


def _metrics(folder: Path) -> dict:
    path = folder / METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


def readme_results(root: Path = ROOT) -> str:
    """README's results table and its two headline bullets, every number read from the files the measuring commands
    write (metrics.json, the photo calibration, the question-scope report)."""
    sc = root / "sort-of-clevr"
    d, ra, s1, sp = (_metrics(sc / n) for n in ("default", "reads-ahead", "full/attention-s1", "spoken"))
    full = {(f, s): _metrics(sc / "full" / f"{f}-s{s}") for f in ("sum", "concat") for s in FULL_SEEDS}
    grid = {(f, c): _metrics(grid_folder(f, c) if root == ROOT else sc / f"{f}-{c}") for f in FUSIONS for c in CELLS}
    photo = {n: _metrics(root / "photos" / n) for n in ("match", "sum", "concat")}
    cal = json.loads((root / "photos" / "calibration.json").read_text())
    scope = json.loads((root / "sort-of-clevr" / "question-scope" / "scope.json").read_text())
    gate_path = sc / "spoken" / "gate.json"
    gate = json.loads(gate_path.read_text()).get("checked", {}) if gate_path.is_file() else {}

    def pair(m: dict) -> str:
        return f"{share(m.get('nonrelational'))} / {share(m.get('relational'))}"

    def num(v: float | None, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    def reading(m: dict) -> str:
        return (f"causal {share(m.get('causal'))}, no_peek {num(m.get('no_peek'), '+.4f')}, spread {num(m.get('spread'), '.3f')}, "
                f"onset {share(m.get('onset'))}, relate {share(m.get('relate'))}")

    best_grid = max((m.get("relational", 0), f"{f}-{c}") for (f, c), m in grid.items() if not ModelConfig(fusion=f).has_region_attention)
    att_grid = grid[("attention", "rnn")]
    t, base = cal["test"], cal["test_baselines"]["photos/match"]
    bench = sp.get("bench", {})
    rows = [
        "| model | measured on | result |",
        "|---|---|---|",
        (f"| `sort-of-clevr/default` (GRU + attention, reads word by word, 16 epochs) | test split | non-relational {share(d['nonrelational'])}, "
            f"relational {share(d['relational'])}; {reading(d)}; grounding {share(d['grounding'])}; trained in {d.get('train_seconds', 0) / 60:.1f} min |"),
        (f"| `sort-of-clevr/reads-ahead` (the same kind of model, but reads the whole question first; for comparison) | test split | "
            f"non-relational {share(ra['nonrelational'])}, relational {share(ra['relational'])}, grounding {share(ra['grounding'])}; {reading(ra)} |"),
        ("| `full/` sum, concat, attention, seeds 0 and 1 (the default's recipe and budget); the grid (2 epochs) | test split | "
            f"seed 0: sum {pair(full[('sum', 0)])}, concat {pair(full[('concat', 0)])}; seed 1: sum {pair(full[('sum', 1)])}, concat "
            f"{pair(full[('concat', 1)])}, attention {pair(s1)}; grid: attention-rnn {pair(att_grid)}, sum and concat at most "
            f"{share(best_grid[0])} relational ({best_grid[1]}) |"),
        (f"| `photos/match` (attention + pooled image + label bridge) | Open Clip Art held-out, {photo['match'].get('val_pairs', 'n/a'):,} pairs | "
            f"accuracy {share(photo['match'].get('accuracy'))}, AUC {photo['match'].get('roc_auc', 0):.3f} (concat {share(photo['concat'].get('accuracy'))} / "
            f"{photo['concat'].get('roc_auc', 0):.3f}, sum {share(photo['sum'].get('accuracy'))} / {photo['sum'].get('roc_auc', 0):.3f}) |"),
        (f"| `photos/match` + calibrated matcher (`checkpoints/photos/calibration.json`) | GCompris photos, test half, {t['pairs']} pairs | "
            f"AUC {t['roc_auc']:.3f}, ECE {t['ece']:.3f}, accuracy {share(t['accuracy'])} (the clip-art model alone: {base['roc_auc']:.3f} / "
            f"{base['ece']:.3f} / {share(base['accuracy'])}) |"),
        (f"| `sort-of-clevr/question-scope` (is a question one of the six kinds?) | held-out rewordings; out-of-scope test questions | "
            f"{share(scope['test']['in_scope_flagged_all'])} of {scope['test']['in_scope_n']} flagged; {share(scope['test']['out_of_scope_flagged_all'])} "
            f"of {scope['test']['out_of_scope_n']} flagged |"),
        (f"| `sort-of-clevr/spoken` (hears the question in 40 ms steps) | test split in held-out voices of eSpeak NG, Festival and Piper | non-relational "
            f"{share(sp['nonrelational'])}, relational {share(sp['relational'])}, grounding {share(sp['grounding'])}"
            + "".join(f"; {name} {pair(m)}" for name, m in (sp.get("per_synth") or {}).items())
            + "".join(f"; {c} {pair(m)}" for c, m in (sp.get("conditions") or {}).items() if c in ("babble10", "room"))
            + (f"; non-speech refused {share(gate['nonspeech_refused']['overall']['rate'])}, clean questions refused "
               f"{share(gate['speech_refused']['clean']['rate'])}" if gate else "")
            + (f"; off-task sentences answered {share(sp['offtask']['overall']['answered'])} (asked again "
               f"{share(sp['offtask']['overall']['asked_again'])})" if sp.get("offtask") else "")
            + (f", questions in other languages {share(sp['offtask']['languages']['overall']['answered'])}"
               if (sp.get("offtask") or {}).get("languages") else "")
            + (f"; task questions asked again {share(sp['heard']['unsure'])}" if sp.get("heard") else "")
            + f"; predict {bench.get('predict_ms_p50', 'n/a')} ms for 3 s; trained in {sp.get('train_seconds', 0) / 60:.1f} min ([docs/SPOKEN.md](docs/SPOKEN.md)) |"),
    ]
    faith = (d.get("faithfulness") or {}).get("overall")
    if faith:
        rows.append(
            f"| `sort-of-clevr/default`: does it use where it looks? (`python -m mmdemo.tasks.sort_of_clevr.faithfulness`) | test split, "
            f"{faith['questions']:,} edited questions | follows {share(faith.get('follows'))}, ignores {share(faith.get('ignores'))} "
            f"(removing objects instead: {share(faith.get('follows_remove'))} / {share(faith.get('ignores_remove'))}); top region on the "
            f"named object: attention {share(faith.get('pointing_attention_named'))}, Integrated Gradients {share(faith.get('pointing_ig_named'))}, "
            f"Grad-CAM {share(faith.get('pointing_gradcam_named'))} ([docs/RESULTS.md](docs/RESULTS.md#does-it-use-where-it-looks)) |")
    leads = [d["relational"] - full[(f, 0)]["relational"] for f in ("sum", "concat")] + [s1["relational"] - full[(f, 1)]["relational"] for f in ("sum", "concat")]
    bullets = [(f"- **Attention is what works**: at the default's full recipe it leads sum and concat by {100 * min(leads):.2f}-{100 * max(leads):.2f} "
                "points on relational questions, both seeds; with one summary of the whole image, the colour word finds no object.")]
    held = [(name, m["heldout_wording"]) for name, m in (("default", d), ("seed 1 of the same recipe", s1)) if m.get("heldout_wording")]
    if held:
        bullets.append(f"- **Wordings it never trained on** ({len(held[0][1]['per_wording'])} held-out rewordings, `evaluate --wording heldout "
                       "--write`): " + "; ".join(f"{name} {pair(h)}, the weakest at {share(min(h['per_wording'].values()))}" for name, h in held) + ".")
    return "\n".join([README_BEGIN, *rows, "", *bullets, README_END])


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m mmdemo.results", description="Results tables read from the checkpoints' files.")
    p.add_argument("table", choices=["readme", "model-card", "faithfulness"],
                   help="readme: README's results block; model-card: the Model card's table; faithfulness: the Compare tab's second table")
    p.add_argument("--write", action="store_true", help="readme: put the block into README.md in place of the one there")
    args = p.parse_args(argv)
    text = {"readme": readme_results, "model-card": results_table, "faithfulness": faithfulness_table}[args.table]()
    if args.write and args.table == "readme":
        readme = ROOT.parent / "README.md"
        old = readme.read_text()
        start, end = old.index(README_BEGIN), old.index(README_END) + len(README_END)
        readme.write_text(old[:start] + text + old[end:])
        return 0
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
