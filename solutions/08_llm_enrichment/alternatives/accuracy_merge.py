# exercise: 08_field_accuracy
# why: a left merge on product_id and vectorised string comparisons; missing predictions are
#   masked with notna.
def field_accuracy(pred, truth, fields):
    missing = [f for f in fields if f not in pred.columns or f not in truth.columns]
    if missing:
        raise KeyError(f"fields missing from pred or truth: {missing}")
    merged = pred[["product_id", *fields]].merge(
        truth[["product_id", *fields]], on="product_id", how="left", suffixes=("_p", "_t")
    )
    scores = {}
    for f in fields:
        p = merged[f + "_p"]
        same = (
            p.astype(str).str.strip().str.lower()
            == merged[f + "_t"].astype(str).str.strip().str.lower()
        )
        scores[f] = float((same & p.notna()).mean())
    out = pd.Series(scores, dtype=float)
    out.loc["all"] = out.mean()
    return out
