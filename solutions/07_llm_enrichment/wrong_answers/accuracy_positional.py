# exercise: 07_field_accuracy
# why: compares pred and truth row by row in their own orders instead of aligning them on
#   product_id.
def field_accuracy(pred, truth, fields):
    for f in fields:
        if f not in pred.columns or f not in truth.columns:
            raise KeyError(f"field {f!r} missing")

    def norm(v):
        return (
            None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower()
        )

    out = {}
    for f in fields:
        pairs = list(zip(pred[f], truth[f].iloc[: len(pred)]))
        out[f] = float(np.mean([norm(a) is not None and norm(a) == norm(b) for a, b in pairs]))
    res = pd.Series(out, dtype=float)
    res["all"] = float(res.mean())
    return res
