# exercise: 08_hallucination
# why: counts missing predictions as predicted values (str(None) = "none" is then invented)
#   instead of skipping them.
def hallucinated_share(pred, catalog, fields, text_col="title_en"):
    truth = catalog.set_index("product_id").loc[pred["product_id"]]
    texts = [re.findall(r"[^\W_]+", str(t).lower()) for t in truth[text_col]]
    out, n_all, h_all = {}, 0, 0
    for f in fields:
        vocab = {str(v).strip().lower() for v in catalog[f]}
        n = h = 0
        for raw, words, true in zip(pred[f], texts, truth[f]):
            value = str(raw).strip().lower()
            ok = all(any(w.startswith(v) for w in words) for v in re.findall(r"[^\W_]+", value))
            n += 1
            h += (value not in vocab) or (not ok and value != str(true).strip().lower())
        out[f] = h / n if n else np.nan
        n_all, h_all = n_all + n, h_all + h
    res = pd.Series(out, dtype=float)
    res["all"] = h_all / n_all if n_all else np.nan
    return res
