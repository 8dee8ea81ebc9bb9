# exercise: 07_classify
# why: checks len(ll) (the number of queries) instead of the number of label columns.
def classify_from_scores(ll, na=None):
    if len(ll) < 2:
        raise ValueError("need at least two labels")
    scores = ll.to_numpy(dtype=np.float64)
    if na is not None:
        scores = scores - na[list(ll.columns)].to_numpy(dtype=np.float64)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = pd.DataFrame(probs, index=ll.index, columns=ll.columns)
    out.insert(0, "label", [ll.columns[j] for j in scores.argmax(axis=1)])
    return out
