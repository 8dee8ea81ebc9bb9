"""Figures and statistics tables of MiniShop for DATASHEET.md.

Usage:
    python datasets/make_figures.py           # writes datasets/figures/*.png
    python datasets/make_figures.py --stats   # also prints the markdown statistics tables

Example:
    >>> tables = stats_markdown()  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recsys_kit import constants as C  # noqa: E402
from recsys_kit import datasets as D  # noqa: E402
from recsys_kit import paths  # noqa: E402
from recsys_kit import simulator as sim_mod  # noqa: E402
from recsys_kit.hybrid import to_run, with_prior  # noqa: E402
from recsys_kit.lexical import BM25Index  # noqa: E402

FIG_DIR = Path(__file__).resolve().parent / "figures"
FM_CLASSES = ("t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
              "bag", "ankle boot")  # fmt: skip


def _save(fig: plt.Figure, name: str) -> None:
    FIG_DIR.mkdir(exist_ok=True)
    fig.tight_layout()
    fig.savefig(FIG_DIR / name, dpi=72, metadata={"Software": None})  # no version stamp
    plt.close(fig)


def make_figures() -> list[str]:
    """Write the datasheet's PNGs and return their names."""
    cat, images, inter = D.load_catalog(), D.load_images(), D.load_interactions()

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    counts = cat[C.COL_DEPARTMENT].value_counts().reindex(C.DEPARTMENTS)
    with_img = cat[cat[C.COL_IMAGE_INDEX] >= 0][C.COL_DEPARTMENT].value_counts()
    a.bar(counts.index, counts.values, color="#bbb", label="no image")
    a.bar(counts.index, with_img.reindex(counts.index).fillna(0).values, label="with image")
    a.set_title("Products per department")
    a.tick_params(axis="x", rotation=45)
    a.legend(fontsize=8)
    b.boxplot([cat.loc[cat[C.COL_DEPARTMENT] == d, C.COL_PRICE] for d in C.DEPARTMENTS],
              tick_labels=C.DEPARTMENTS, showfliers=False)  # fmt: skip
    b.set_yscale("log")
    b.set_title("Price (USD, log scale)")
    b.tick_params(axis="x", rotation=45)
    _save(fig, "catalog.png")

    fig, axes = plt.subplots(3, 10, figsize=(8, 2.7))
    for col, name in enumerate(FM_CLASSES):
        idx = cat.loc[cat[C.COL_CATEGORY] == name, C.COL_IMAGE_INDEX].head(3).tolist()
        for row, i in enumerate(idx):
            axes[row, col].imshow(images[i], cmap="gray_r")
        axes[0, col].set_title(name, fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    _save(fig, "images.png")

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    week = inter[C.COL_TIMESTAMP].dt.to_period("W").dt.start_time
    for split in C.SPLITS:
        per_week = week[inter[C.COL_SPLIT] == split].value_counts().sort_index()
        a.plot(per_week.index, per_week.values, label=split)
    a.set_title("Events per week")
    a.tick_params(axis="x", rotation=45)
    a.legend(fontsize=8)
    shown = inter[(inter[C.COL_EVENT] == "view") & (inter[C.COL_POSITION] > 0)]
    clicked = inter[(inter[C.COL_EVENT] == "click") & (inter[C.COL_POSITION] > 0)]
    ctr = clicked[C.COL_POSITION].value_counts() / shown[C.COL_POSITION].value_counts()
    b.bar(ctr.index, ctr.values)
    b.set_title("Click-through rate by position")
    b.set_xlabel("position")
    _save(fig, "interactions.png")

    study = offline_online_study()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    sim_mod.plot_offline_online(study, ax=a)
    sim_mod.plot_offline_online(study[study["ndcg@10"] < 0.5], ax=b)
    b.set_title("zoom: BM25 and its re-rankings")
    _save(fig, "offline_online.png")
    return ["catalog.png", "images.png", "interactions.png", "offline_online.png"]


def offline_online_study() -> pd.DataFrame:
    """Offline nDCG@10 against simulated online outcomes for a family of rankers.

    Every query of MiniShop against the whole catalog (cross-lingual queries on the other
    language, as the protocol says): BM25 on titles and on titles + descriptions, BM25
    re-ranked with a rating, price or popularity prior, a shuffled BM25, the qrels "oracle"
    (judged products by grade: nDCG@10 = 1), the oracle with a rating or price tie-break,
    and the simulator's own best ranking.
    """
    cat, queries, qrels = D.load_catalog(), D.load_queries(), D.load_qrels()
    truth = D.qrels_dict(qrels)
    ids = cat[C.COL_PRODUCT_ID].tolist()
    other = {"en": "zh", "zh": "en"}
    target = np.where(queries[C.COL_QUERY_KIND] == "cross_lingual",
                      queries[C.COL_LANGUAGE].map(other), queries[C.COL_LANGUAGE])  # fmt: skip
    runs: dict = {}
    for name, texts in (
        ("BM25 titles", {lang: cat[f"title_{lang}"].tolist() for lang in C.LANGUAGES}),
        ("BM25 titles+descriptions", {lang: D.product_text(cat, lang) for lang in C.LANGUAGES}),
    ):
        run = {}
        for lang in C.LANGUAGES:
            rows = target == lang
            s, i = BM25Index(texts[lang], ids).search(queries.loc[rows, C.COL_QUERY].tolist(), 100)
            run.update(to_run(queries.loc[rows, C.COL_QUERY_ID].tolist(), s, i, ids))
        runs[name] = {q: {d: v for d, v in docs.items() if v > 0} for q, docs in run.items()}
    base = runs["BM25 titles+descriptions"]
    rating = dict(zip(ids, (cat[C.COL_RATING] - 1) / 4))
    rel_price = cat[C.COL_PRICE] / cat.groupby(C.COL_CATEGORY)[C.COL_PRICE].transform("median")
    cheap = dict(zip(ids, 1 / (1 + rel_price**2)))
    pop = np.log1p(cat[C.COL_REVIEW_COUNT].to_numpy(float))
    popular = dict(zip(ids, pop / pop.max()))
    for w in (0.2, 0.5):
        runs[f"+ rating prior {w}"] = with_prior(base, rating, w)
        runs[f"+ price prior {w}"] = with_prior(base, cheap, w)
        runs[f"+ popularity prior {w}"] = with_prior(base, popular, w)
    rng = np.random.default_rng(C.SEED)
    runs["BM25 shuffled top 30"] = {
        q: {d: float(rng.random()) for d in sorted(docs, key=lambda d: (-docs[d], d))[:30]}
        for q, docs in base.items()
    }
    qids = queries[C.COL_QUERY_ID].tolist()
    oracle = {q: {d: float(g) for d, g in truth[q].items()} for q in qids}
    runs["qrels oracle"] = oracle
    runs["oracle, rating tie-break"] = with_prior(oracle, rating, 0.1)
    runs["oracle, price tie-break"] = with_prior(oracle, cheap, 0.1)
    sim = sim_mod.ShopperSimulator(catalog=cat)
    runs["simulator's best"] = sim.ideal_run(qids)
    return sim_mod.offline_online(sim, runs, truth, qids)


def _md(df: pd.DataFrame) -> str:
    """A frame as a GitHub markdown table (no tabulate dependency)."""
    cols = [str(df.index.name or "")] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [f"{v:g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


def stats_markdown() -> str:
    """The datasheet's statistics tables, computed from the committed files."""
    cat, queries, qrels = D.load_catalog(), D.load_queries(), D.load_qrels()
    users, inter = D.load_users(), D.load_interactions()
    out = []
    g = cat.groupby(C.COL_DEPARTMENT)
    dept = pd.DataFrame({
        "products": g.size(),
        "with image": g[C.COL_IMAGE_INDEX].apply(lambda s: int((s >= 0).sum())),
        "categories": g[C.COL_CATEGORY].nunique(),
        "brands": g[C.COL_BRAND].nunique(),
        "median price": g[C.COL_PRICE].median().round(2),
    }).reindex(list(C.DEPARTMENTS))  # fmt: skip
    dept.loc["total"] = [len(cat), int((cat[C.COL_IMAGE_INDEX] >= 0).sum()),
                         cat[C.COL_CATEGORY].nunique(), cat[C.COL_BRAND].nunique(),
                         round(cat[C.COL_PRICE].median(), 2)]  # fmt: skip
    dept.index.name = "department"
    out += ["### Products per department", _md(dept)]
    grid = queries.groupby([C.COL_QUERY_KIND, C.COL_LANGUAGE]).size().unstack(fill_value=0)
    grid = grid.reindex(list(C.QUERY_KINDS))
    grid["total"] = grid.sum(axis=1)
    grid.loc["total"] = grid.sum()
    out += ["### Queries per kind and language", _md(grid)]
    lab = qrels[C.COL_LABEL].value_counts().reindex(list(C.ESCI_LABELS))
    per_q = qrels.groupby(C.COL_QUERY_ID).size()
    labels = pd.DataFrame({"judgements": lab, "share": (lab / lab.sum()).round(3)})
    labels.index.name = "label"
    out += ["### Relevance labels", _md(labels),
            f"Judged candidates per query: median {int(per_q.median())}, "
            f"min {per_q.min()}, max {per_q.max()}."]  # fmt: skip
    ev = pd.crosstab(inter[C.COL_EVENT], inter[C.COL_SPLIT]).reindex(list(C.EVENTS))
    ev["total"] = ev.sum(axis=1)
    ev.loc["total"] = ev.sum()
    out += ["### Interactions per event and split", _md(ev)]
    cutoff = inter.loc[inter[C.COL_SPLIT] == "test", C.COL_TIMESTAMP].min()
    active = inter[C.COL_USER_ID].nunique()
    out.append(
        f"Users: {len(users)} ({active} with interactions). First test event: {cutoff}. "
        f"Test share: {(inter[C.COL_SPLIT] == 'test').mean():.1%}."
    )
    study = offline_online_study()
    table = study[["ndcg@10", "ctr", "conversion"]].round(3).sort_values("ndcg@10")
    pairs = sim_mod.discordant_pairs(study)
    rho = study["ndcg@10"].corr(study["conversion"], method="spearman")
    out += ["### Offline nDCG@10 against simulated online outcomes", _md(table),
            f"Spearman correlation of nDCG@10 and conversion over {len(study)} rankers: "
            f"{rho:.2f}; {len(pairs)} of {len(study) * (len(study) - 1) // 2} pairs are ordered "
            "differently (or tie offline and differ online)."]  # fmt: skip
    sizes = pd.DataFrame(
        {"bytes": {p.name: p.stat().st_size for p in sorted(paths.minishop_dir().iterdir())}}
    )
    sizes.loc["total"] = sizes["bytes"].sum()
    sizes.index.name = "file"
    out += ["### Files", _md(sizes)]
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", action="store_true", help="print the markdown tables")
    args = parser.parse_args(argv)
    for name in make_figures():
        print(f"wrote {FIG_DIR / name}")
    if args.stats:
        print(stats_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
