# exercise: 07_field_accuracy
# why: leaves missing predictions out of the share (accuracy over the predicted rows only)
#   instead of counting them as wrong.
def field_accuracy(pred, truth, fields):
    for f in fields:
        if f not in pred.columns or f not in truth.columns:
            raise KeyError(f"field {f!r} missing")
    aligned = truth.set_index("product_id").loc[pred["product_id"]]
    out = {}
    for f in fields:
        ok = [
            str(a).strip().lower() == str(b).strip().lower()
            for a, b in zip(pred[f], aligned[f])
            if pd.notna(a)
        ]
        out[f] = float(np.mean(ok)) if ok else 0.0
    res = pd.Series(out, dtype=float)
    res["all"] = float(res.mean())
    return res
