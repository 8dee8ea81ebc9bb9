# exercise: 08_hallucination
# why: "all" is the mean of the per-field shares instead of the pooled counts.
def hallucinated_share(pred, catalog, fields, text_col="title_en"):
    def norm(v):
        return (
            None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower()
        )

    truth = catalog.set_index("product_id").loc[pred["product_id"]]
    texts = [re.findall(r"[^\W_]+", str(t).lower()) for t in truth[text_col]]
    out = {}
    for f in fields:
        vocab = {norm(v) for v in catalog[f]}
        flags = []
        for raw, words, true in zip(pred[f], texts, truth[f]):
            value = norm(raw)
            if value is None:
                continue
            ok = all(any(w.startswith(v) for w in words) for v in re.findall(r"[^\W_]+", value))
            flags.append((value not in vocab) or (not ok and value != norm(true)))
        out[f] = float(np.mean(flags)) if flags else np.nan
    res = pd.Series(out, dtype=float)
    res["all"] = res.mean()
    return res
