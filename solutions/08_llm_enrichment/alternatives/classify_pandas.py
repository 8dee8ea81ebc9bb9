# exercise: 08_classify
# why: pandas all the way: label-aligned subtraction, idxmax (first column on ties) and a
#   row-wise log-sum-exp.
def classify_from_scores(ll, na=None):
    if len(ll.columns) < 2:
        raise ValueError(f"need two labels or more, got {list(ll.columns)}")
    scores = ll.astype(float)
    if na is not None:
        scores = scores - na.reindex(ll.columns).astype(float)
    shifted = scores.sub(scores.max(axis=1), axis=0)
    probs = np.exp(shifted)
    probs = probs.div(probs.sum(axis=1), axis=0)
    probs.insert(0, "label", scores.idxmax(axis=1))
    return probs
