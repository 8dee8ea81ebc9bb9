# exercise: 07_field_accuracy
# why: compares str(v) of everything, so a missing prediction where the truth is missing too
#   ("nan" == "nan") counts as right.
def field_accuracy(pred, truth, fields):
    for f in fields:
        if f not in pred.columns or f not in truth.columns:
            raise KeyError(f"field {f!r} missing")
    aligned = truth.set_index("product_id").loc[pred["product_id"]]
    out = {}
    for f in fields:
        p = pred[f].astype(str).str.strip().str.lower().replace("none", "nan").to_numpy()
        t = aligned[f].astype(str).str.strip().str.lower().replace("none", "nan").to_numpy()
        out[f] = float(np.mean((p == t) & (pred[f].to_numpy() != None)))  # noqa: E711
    res = pd.Series(out, dtype=float)
    res["all"] = float(res.mean())
    return res
