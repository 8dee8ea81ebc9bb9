# exercise: 07_field_accuracy
# why: compares str(v).strip() without lower-casing: "Red" and "red" count as different.
def field_accuracy(pred, truth, fields):
    for f in fields:
        if f not in pred.columns or f not in truth.columns:
            raise KeyError(f"field {f!r} missing")
    aligned = truth.set_index("product_id").loc[pred["product_id"]]
    out = {}
    for f in fields:
        ok = [pd.notna(a) and str(a).strip() == str(b).strip() for a, b in zip(pred[f], aligned[f])]
        out[f] = float(np.mean(ok))
    res = pd.Series(out, dtype=float)
    res["all"] = float(res.mean())
    return res
