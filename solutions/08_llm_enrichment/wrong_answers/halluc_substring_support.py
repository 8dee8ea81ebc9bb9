# exercise: 08_hallucination
# why: checks support with a substring test on the whole title ("red" in "bored panda mug")
#   instead of "every word of the value starts a word of the title".
def hallucinated_share(pred, catalog, fields, text_col="title_en"):
    def norm(v):
        return (
            None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower()
        )

    truth = catalog.set_index("product_id").loc[pred["product_id"]]
    texts = [str(t).lower() for t in truth[text_col]]
    out, n_all, h_all = {}, 0, 0
    for f in fields:
        vocab = {norm(v) for v in catalog[f]}
        n = h = 0
        for raw, src, true in zip(pred[f], texts, truth[f]):
            value = norm(raw)
            if value is None:
                continue
            n += 1
            h += (value not in vocab) or (value not in src and value != norm(true))
        out[f] = h / n if n else np.nan
        n_all, h_all = n_all + n, h_all + h
    res = pd.Series(out, dtype=float)
    res["all"] = h_all / n_all if n_all else np.nan
    return res
