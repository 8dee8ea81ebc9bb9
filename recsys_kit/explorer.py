"""Search explorer: an ipywidgets UI to query MiniShop and see *why* each product ranks there.

:class:`SearchExplorer` indexes a catalog (a stratified subset by default: the multilingual
encoder manages about 10-40 titles/s on a laptop CPU; vectors are cached on disk, so the second
build is fast) with BM25 (:class:`recsys_kit.lexical.BM25Index`, over titles and descriptions in
both languages) and a dense text encoder (by default the multilingual E5 over the English and
Chinese titles, so Chinese and English queries both work), then ranks with one of:

* ``"bm25"`` -- lexical only; score = BM25 score.
* ``"semantic"`` -- dense only; score = cosine similarity of query and product.
* ``"rrf"`` -- reciprocal-rank fusion (:func:`recsys_kit.hybrid.rrf`, k=60) of the semantic
  and lexical rankings, each weighted by its slider.
* ``"weighted"`` -- a weighted sum of the signals, each in [0, 1]: semantic similarity
  (min-max over the indexed products), BM25 (divided by the best BM25 score, so a product
  sharing no word with the query gets exactly 0), rating and popularity (defined as in
  :func:`recsys_kit.scoring.pair_features`).

Every result carries one ``contrib_*`` column per signal (``semantic``, ``lexical``,
``rating``, ``popularity``) and those columns **sum to the score** for every ranker: that is the
per-result explanation the cards draw as bars. Informational columns (not in the score):
``similarity`` (raw cosine), ``bm25`` (raw), ``attr_match`` and ``price_fit`` (from
:func:`recsys_kit.scoring.pair_features`).

DOM hooks for browser tests (CSS classes): ``recsys-explorer`` (the whole UI), ``recsys-query``
(the query box), ``recsys-search`` (button), ``recsys-ranker`` (dropdown), ``recsys-status``,
``recsys-results``, ``recsys-result`` (one card), ``recsys-department``, ``recsys-title-en``,
``recsys-title-zh``, ``recsys-score``, ``recsys-contrib``, ``recsys-thumb`` /
``recsys-no-image``.

Example:
    >>> ex = SearchExplorer(n_products=300)                     # doctest: +SKIP
    >>> ex.search("美妆推荐", ranker="semantic", k=3)["department"].tolist()  # doctest: +SKIP
    ['beauty', 'beauty', 'beauty']
    >>> ex                                                      # doctest: +SKIP
    (the widget, in a notebook)
"""

from __future__ import annotations

import html
import io
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit import datasets, hybrid, scoring
from recsys_kit.datasets.sampling import stratified_subset  # re-exported: the capstone used it
from recsys_kit.lexical import BM25Index
from recsys_kit.progress import progress, progress_bar

__all__ = ["RANKERS", "SIGNALS", "DEFAULT_WEIGHTS", "SearchExplorer", "stratified_subset"]

#: Ranker name -> label shown in the dropdown.
RANKERS: dict[str, str] = {
    "bm25": "BM25 (lexical)",
    "semantic": "Semantic (dense)",
    "rrf": "Hybrid RRF",
    "weighted": "Weighted hybrid",
}
#: Signals that can contribute to a score, in display order.
SIGNALS: tuple[str, ...] = ("semantic", "lexical", "rating", "popularity")
#: Default weights of the sliders (``rating``/``popularity`` only act in the weighted ranker).
DEFAULT_WEIGHTS: dict[str, float] = {
    "semantic": 0.7,
    "lexical": 0.3,
    "rating": 0.1,
    "popularity": 0.05,
}
#: Which weights each ranker reads (the others' sliders are greyed out in the UI).
RANKER_WEIGHTS: dict[str, tuple[str, ...]] = {
    "bm25": (),
    "semantic": (),
    "rrf": ("semantic", "lexical"),
    "weighted": SIGNALS,
}
RRF_K = 60
_COLORS = {
    "semantic": "#4c72b0",
    "lexical": "#dd8452",
    "rating": "#55a868",
    "popularity": "#c44e52",
}
_THUMB_PX = 84  # 28 x 3: nearest-neighbour upscaling keeps the Fashion-MNIST pixels crisp


def _png(image: np.ndarray, px: int = _THUMB_PX) -> bytes:
    """A 28x28 uint8 picture (0 = background) as a PNG, dark product on white."""
    from PIL import Image  # pillow ships with matplotlib, a course dependency

    img = Image.fromarray(255 - np.asarray(image, dtype=np.uint8), mode="L")
    buf = io.BytesIO()
    img.resize((px, px), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.ones_like(x) if hi == lo else (x - lo) / (hi - lo)


class SearchExplorer:
    """Interactive product search over a catalog subset, with per-result explanations.

    Args:
        catalog: products (MiniShop schema); ``None`` loads MiniShop.
        images: pictures aligned with ``catalog.image_index``; ``None`` loads MiniShop's
            (products without a picture, or any when none load, get a placeholder).
        encoder: object with ``encode(texts) -> (n, dim)`` (and optionally
            ``encode_queries``); ``None`` builds ``TextEncoder("multilingual")``.
        n_products: index a stratified subset of this many products (``None``: all).
        product_vectors: precomputed unit vectors, one row per row of ``catalog`` (before the
            subset is taken); skips product encoding. Still needs ``encoder`` for queries.
        text_lang: product text BM25 indexes: ``"both"`` (English + Chinese), ``"en"``, ``"zh"``.
        dense_text: what the encoder embeds: ``"titles"`` (English + Chinese titles: about 5x
            faster to encode than the full text, and enough for the explorer) or ``"full"``
            (the same text as BM25).
        weights: initial slider weights (keys of :data:`SIGNALS`).
        k: initial number of results.
        ranker: initial ranker (a key of :data:`RANKERS`).
        seed: seed of the subset.
        show_progress: tqdm bars while building the index.

    Example:
        >>> ex = SearchExplorer(n_products=300)                              # doctest: +SKIP
        >>> ex.search("black ankle boots", ranker="weighted", k=5)           # doctest: +SKIP
        >>> ex.widget                                                        # doctest: +SKIP
    """

    def __init__(
        self,
        catalog: pd.DataFrame | None = None,
        images: np.ndarray | None = None,
        encoder: Any | None = None,
        n_products: int | None = 1000,
        *,
        product_vectors: np.ndarray | None = None,
        text_lang: str = "both",
        dense_text: str = "titles",
        weights: Mapping[str, float] | None = None,
        k: int = C.DEFAULT_K,
        ranker: str = "weighted",
        seed: int = C.SEED,
        show_progress: bool = True,
    ) -> None:
        self._check_ranker(ranker)
        if dense_text not in ("titles", "full"):
            raise ValueError(f"dense_text must be 'titles' or 'full', got {dense_text!r}")
        self.weights = self._check_weights({**DEFAULT_WEIGHTS, **(weights or {})})
        self.default_k = k
        self.default_ranker = ranker
        full = datasets.load_catalog() if catalog is None else catalog
        if product_vectors is not None and len(product_vectors) != len(full):
            raise ValueError(
                f"product_vectors has {len(product_vectors)} rows for {len(full)} catalog rows; "
                "pass one vector per catalog row (before the subset is taken)"
            )
        # Remember each kept product's row in ``catalog`` to pick its precomputed vector.
        self.catalog = stratified_subset(full.assign(_row=np.arange(len(full))), n_products, seed)
        rows = self.catalog.pop("_row").to_numpy()
        self.images = self._load_images(images)

        steps = progress_bar(4, "building search explorer", not show_progress)
        steps.set_postfix_str("encoder")
        if encoder is None:
            from recsys_kit.encoders import TextEncoder  # heavy import, only when needed

            encoder = TextEncoder("multilingual")
        self.encoder = encoder
        steps.update()
        texts = datasets.product_text(self.catalog, text_lang)
        steps.set_postfix_str(f"encoding {len(texts)} products")
        if product_vectors is not None:
            vecs = np.asarray(product_vectors, dtype=np.float32)[rows]
        elif dense_text == "titles":
            titles = self.catalog[C.COL_TITLE_EN].astype(str)
            if C.COL_TITLE_ZH in self.catalog.columns:
                titles = titles + " / " + self.catalog[C.COL_TITLE_ZH].astype(str)
            vecs = self._encode_products(titles.tolist(), show_progress)
        else:
            vecs = self._encode_products(texts, show_progress)
        norms = np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        self.product_vectors = (vecs / norms).astype(np.float32)
        steps.update()
        steps.set_postfix_str("BM25 index")
        ids = self.catalog[C.COL_PRODUCT_ID].astype(str).tolist()
        self.bm25 = BM25Index(texts, ids)
        self.lexicon = scoring.build_lexicon(self.catalog)  # built once, reused per query
        steps.update()
        steps.set_postfix_str("pictures")
        self._thumbs = self._render_thumbs()
        steps.update()
        steps.close()
        self._widget: Any | None = None

    # ------------------------------------------------------------------ building
    def _load_images(self, images: np.ndarray | None) -> np.ndarray | None:
        if C.COL_IMAGE_INDEX not in self.catalog.columns:
            return None
        if images is None:
            try:
                images = datasets.load_images()
            except (FileNotFoundError, datasets.SchemaError):
                return None  # placeholders only: the explorer is still useful without pictures
        images = np.asarray(images)
        if images.ndim != 3:
            raise ValueError(f"images must be (n, height, width) uint8, got shape {images.shape}")
        return images

    def _encode_products(self, texts: list[str], show_progress: bool) -> np.ndarray:
        # Our own chunked loop, so any encoder with encode(texts) gets a progress bar.
        chunk = C.DEFAULT_BATCH_SIZE
        parts = [
            np.asarray(self.encoder.encode(texts[i : i + chunk]), dtype=np.float32)
            for i in progress(
                range(0, len(texts), chunk), "encoding products", not show_progress, unit="batch"
            )
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)

    def _render_thumbs(self) -> list[bytes | None]:
        if self.images is None:
            return [None] * len(self.catalog)
        out: list[bytes | None] = []
        for i in self.catalog[C.COL_IMAGE_INDEX].astype(int):
            out.append(_png(self.images[i]) if 0 <= i < len(self.images) else None)
        return out

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_ranker(ranker: str) -> None:
        if ranker not in RANKERS:
            raise ValueError(f"unknown ranker {ranker!r}; choose one of {sorted(RANKERS)}")

    @staticmethod
    def _check_weights(weights: Mapping[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown weight(s) {unknown}; weights are named {list(SIGNALS)}")
        out = {s: float(weights[s]) for s in SIGNALS}
        if any(not np.isfinite(v) or v < 0 for v in out.values()):
            raise ValueError(f"weights must be finite and >= 0, got {out}")
        return out

    # ------------------------------------------------------------------ ranking
    def __len__(self) -> int:
        return len(self.catalog)

    def _encode_query(self, query: str) -> np.ndarray:
        enc = getattr(self.encoder, "encode_queries", None)
        q = enc([query]) if enc is not None else self.encoder.encode([query])
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        return q / max(float(np.linalg.norm(q)), 1e-12)

    def signals(self, query: str) -> pd.DataFrame:
        """Raw signals of every indexed product for ``query`` (catalog order).

        Returns:
            Columns ``product_id``, ``similarity`` (cosine), ``bm25``, and the
            :func:`recsys_kit.scoring.pair_features` columns ``attr_match``, ``rating``,
            ``price_fit``, ``popularity`` (rating/popularity in [0, 1]).
        """
        qv = self._encode_query(query)
        ids = self.catalog[C.COL_PRODUCT_ID].astype(str)
        feats = scoring.pair_features(
            pd.DataFrame({C.COL_QUERY_ID: ["q"], C.COL_QUERY: [query]}),
            self.catalog,
            pd.DataFrame({C.COL_QUERY_ID: "q", C.COL_PRODUCT_ID: self.catalog[C.COL_PRODUCT_ID]}),
            qv[None, :],
            self.product_vectors,
            lexicon=self.lexicon,
        )
        return pd.DataFrame(
            {
                C.COL_PRODUCT_ID: ids.to_numpy(),
                # unit vectors: ||u - v||^2 = 2 - 2 cos(u, v)
                "similarity": 1.0 - feats["distance"].to_numpy() / 2.0,
                "bm25": self.bm25.get_scores(query).astype(np.float64),
                "attr_match": feats["attr_match"].to_numpy(),
                "rating": feats["rating"].to_numpy(),
                "price_fit": feats["price_fit"].to_numpy(),
                "popularity": feats["popularity"].to_numpy(),
            }
        )

    def _contributions(
        self, sig: pd.DataFrame, ranker: str, w: dict[str, float]
    ) -> dict[str, np.ndarray]:
        n = len(sig)
        zero = np.zeros(n)
        contrib = {s: zero.copy() for s in SIGNALS}
        if ranker == "bm25":
            contrib["lexical"] = sig["bm25"].to_numpy()
        elif ranker == "semantic":
            contrib["semantic"] = sig["similarity"].to_numpy()
        elif ranker == "rrf":
            ids = sig[C.COL_PRODUCT_ID].tolist()
            sem_run = {"q": dict(zip(ids, sig["similarity"].tolist()))}
            # BM25 retrieves only products sharing a word with the query.
            lex_run = {"q": {d: s for d, s in zip(ids, sig["bm25"].tolist()) if s > 0}}
            for name, run in (("semantic", sem_run), ("lexical", lex_run)):
                part = hybrid.rrf([run], k=RRF_K, weights=[w[name]]).get("q", {})
                contrib[name] = np.array([part.get(d, 0.0) for d in ids])
        else:  # weighted
            bm = sig["bm25"].to_numpy()
            contrib["semantic"] = w["semantic"] * _minmax(sig["similarity"].to_numpy())
            contrib["lexical"] = w["lexical"] * (bm / bm.max() if bm.max() > 0 else zero)
            contrib["rating"] = w["rating"] * sig["rating"].to_numpy()
            contrib["popularity"] = w["popularity"] * sig["popularity"].to_numpy()
        return contrib

    def search(
        self,
        query: str,
        ranker: str | None = None,
        k: int | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """Rank the indexed products for ``query``.

        Args:
            query: English or Chinese text.
            ranker: ``"bm25"``, ``"semantic"``, ``"rrf"`` or ``"weighted"`` (default: the
                constructor's).
            k: number of results (capped at the number of indexed products).
            weights: overrides of the current weights (keys of :data:`SIGNALS`).

        Returns:
            One row per result, best first: ``rank`` (1-based), ``product_id``, titles,
            ``department``, ``category``, ``price``, ``rating`` (catalog, 1-5), ``score``,
            ``contrib_<signal>`` for each of :data:`SIGNALS` (summing to ``score``), and the
            informational ``similarity``, ``bm25``, ``attr_match``, ``price_fit``,
            ``popularity``, ``image_index`` and ``catalog_row`` (row in :attr:`catalog`).

        Example:
            >>> ex.search("美妆推荐", ranker="rrf", k=3)[["department", "score"]]  # doctest: +SKIP
        """
        ranker = self.default_ranker if ranker is None else ranker
        self._check_ranker(ranker)
        k = self.default_k if k is None else k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string, e.g. '美妆推荐' or 'ankle boots'")
        w = self._check_weights({**self.weights, **(weights or {})})
        sig = self.signals(query)
        contrib = self._contributions(sig, ranker, w)
        score = np.sum([contrib[s] for s in SIGNALS], axis=0)
        # Best first; ties go to the lower catalog row (deterministic, as in ranking.topk).
        order = np.lexsort((np.arange(len(score)), -score))[: min(k, len(score))]
        cat = self.catalog.iloc[order].reset_index(drop=True)
        cols = [C.COL_PRODUCT_ID, C.COL_TITLE_EN, C.COL_TITLE_ZH, C.COL_DEPARTMENT,
                C.COL_CATEGORY, C.COL_BRAND, C.COL_PRICE, C.COL_RATING]  # fmt: skip
        out = cat[[c for c in cols if c in cat.columns]].copy()
        out.insert(0, "rank", np.arange(1, len(order) + 1))
        out["score"] = score[order]
        for s in SIGNALS:
            out[f"contrib_{s}"] = contrib[s][order]
        for c in ("similarity", "bm25", "attr_match", "price_fit", "popularity"):
            out[c] = sig[c].to_numpy()[order]
        out[C.COL_IMAGE_INDEX] = (
            cat[C.COL_IMAGE_INDEX].to_numpy() if C.COL_IMAGE_INDEX in cat else -1
        )
        out["catalog_row"] = order  # position in self.catalog (the cards' pictures)
        return out

    # ------------------------------------------------------------------ UI
    @property
    def widget(self) -> Any:
        """The ipywidgets UI (built on first access)."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Displaying the explorer displays its widget.
        return self.widget._repr_mimebundle_(**kwargs)

    def _build_widget(self) -> Any:
        import ipywidgets as W

        self._query = W.Text(
            placeholder="Search: 美妆推荐, black ankle boots, ...",
            continuous_update=False,  # search on Enter or leaving the box, not per keystroke
            layout=W.Layout(width="340px"),
        ).add_class("recsys-query")
        self._button = W.Button(description="Search", button_style="primary", icon="search")
        self._button.add_class("recsys-search")
        self._ranker = W.Dropdown(
            options=[(label, key) for key, label in RANKERS.items()],
            value=self.default_ranker,
            description="Ranker",
            layout=W.Layout(width="260px"),
        ).add_class("recsys-ranker")
        self._k = W.IntSlider(value=self.default_k, min=1, max=min(50, len(self)), description="k")
        self._k.add_class("recsys-k")
        self._sliders = {
            s: W.FloatSlider(
                value=self.weights[s], min=0.0, max=1.0, step=0.05, description=f"{s} weight",
                continuous_update=False, readout_format=".2f",
                # the label takes the width it needs ("popularity weight" was cut at 80 px)
                style={"description_width": "initial"}, layout=W.Layout(width="330px"),
            ).add_class(f"recsys-w-{s}")
            for s in SIGNALS
        }  # fmt: skip
        self._status = W.HTML(f"<i>{len(self)} products indexed. Type a query.</i>")
        self._status.add_class("recsys-status")
        self._results = W.VBox([]).add_class("recsys-results")
        header = W.HTML("<b>MiniShop search explorer</b>")
        controls = W.HBox([self._query, self._button, self._ranker, self._k])
        sliders = W.HBox(list(self._sliders.values()), layout=W.Layout(flex_flow="row wrap"))
        box = W.VBox([header, controls, sliders, self._status, self._results])
        box.add_class("recsys-explorer")

        def rerun(_change: Any = None) -> None:
            self._update_slider_state()
            if self._query.value.strip():
                self._run()

        self._query.observe(rerun, "value")
        self._button.on_click(rerun)
        self._ranker.observe(rerun, "value")
        self._k.observe(rerun, "value")
        for sl in self._sliders.values():
            sl.observe(rerun, "value")
        self._update_slider_state()
        return box

    def _update_slider_state(self) -> None:
        used = RANKER_WEIGHTS[self._ranker.value]
        for s, sl in self._sliders.items():
            sl.disabled = s not in used

    def _run(self) -> None:
        """Search with the UI's current values and redraw the cards (errors go to the status)."""
        query, ranker = self._query.value.strip(), self._ranker.value
        weights = {s: sl.value for s, sl in self._sliders.items()}
        start = time.perf_counter()
        try:
            res = self.search(query, ranker=ranker, k=self._k.value, weights=weights)
        except Exception as exc:  # shown to the student instead of vanishing in the kernel log
            self._status.value = f"<span style='color:#b00'>Error: {html.escape(str(exc))}</span>"
            self._results.children = ()
            return
        ms = (time.perf_counter() - start) * 1000
        self._status.value = (
            f"{len(res)} results for <b class='recsys-status-query'>{html.escape(query)}</b> "
            f"with {html.escape(RANKERS[ranker])} in {ms:.0f} ms"
        )
        self._results.children = tuple(self._card(row) for row in res.itertuples(index=False))

    def _card(self, row: Any) -> Any:
        import ipywidgets as W

        png = self._thumbs[int(row.catalog_row)]
        if png is not None:
            pic = W.Image(value=png, format="png", width=_THUMB_PX, height=_THUMB_PX)
            pic.add_class("recsys-thumb")
        else:
            pic = W.HTML(
                f"<div style='width:{_THUMB_PX}px;height:{_THUMB_PX}px;background:#eee;"
                "display:flex;align-items:center;justify-content:center;color:#888;"
                "font-size:11px'>no image</div>"
            ).add_class("recsys-no-image")
        e = html.escape
        info = W.HTML(
            f"<div style='line-height:1.35'><b>#{row.rank}</b> "
            f"<span class='recsys-title-en'>{e(str(row.title_en))}</span><br>"
            f"<span class='recsys-title-zh'>{e(str(row.title_zh))}</span><br>"
            f"<span class='recsys-department'>{e(str(row.department))}</span>"
            f" &middot; {e(str(getattr(row, 'category', '')))}"
            f" &middot; ${row.price:.2f} &middot; &#9733; {row.rating:.1f}"
            f" &middot; score <span class='recsys-score'>{row.score:.4f}</span></div>",
            layout=W.Layout(width="430px"),
        )
        card = W.HBox([pic, info, self._contrib_html(row)])
        card.layout.border_bottom = "1px solid #ddd"
        card.layout.padding = "4px"
        return card.add_class("recsys-result")

    @staticmethod
    def _contrib_html(row: Any) -> Any:
        """A bar per signal, its length its share of the score."""
        import ipywidgets as W

        vals = {s: float(getattr(row, f"contrib_{s}")) for s in SIGNALS}
        total = sum(abs(v) for v in vals.values()) or 1.0
        lines = []
        for s, v in vals.items():
            width = int(round(120 * abs(v) / total))
            lines.append(
                f"<tr><td style='padding:0 4px'>{s}</td>"
                f"<td style='padding:0 4px;text-align:right'>{v:.3f}</td>"
                f"<td><div style='width:{width}px;height:9px;background:{_COLORS[s]}'></div>"
                "</td></tr>"
            )
        extra = f"attr match {row.attr_match:.2f} &middot; price fit {row.price_fit:.2f}"
        body = (
            "<table style='font-size:11px;border-collapse:collapse'>"
            + "".join(lines)
            + f"</table><div style='font-size:10px;color:#777'>{extra}</div>"
        )
        return W.HTML(body).add_class("recsys-contrib")
