# exercise: 08_hallucination
# why: one long frame of (field, value, truth, title) rows, flags computed per row, then a
#   groupby for the shares and a pooled mean for "all".
def hallucinated_share(pred, catalog, fields, text_col="title_en"):
    def norm(v):
        return None if pd.isna(v) else str(v).strip().lower()

    def words(s):
        return re.findall(r"[^\W_]+", s)

    truth = catalog.set_index("product_id").loc[pred["product_id"]]
    rows = []
    for f in fields:
        vocab = set(map(norm, catalog[f]))
        for value, true, title in zip(map(norm, pred[f]), map(norm, truth[f]), truth[text_col]):
            if value is None:
                continue
            title_words = words(str(title).lower())
            supported = all(any(t.startswith(w) for t in title_words) for w in words(value))
            rows.append((f, value not in vocab or (not supported and value != true)))
    flags = pd.DataFrame(rows, columns=["field", "hallucinated"])
    shares = flags.groupby("field")["hallucinated"].mean().reindex(fields).astype(float)
    shares.loc["all"] = float(flags["hallucinated"].mean()) if len(flags) else np.nan
    return shares.rename(None).rename_axis(None)
