# exercise: 07_classify
# why: subtracts the N/A scores by position (na.to_numpy()), not by label name: a Series that
#   lists the labels in another order calibrates the wrong columns.
def classify_from_scores(ll, na=None):
    if ll.shape[1] < 2:
        raise ValueError("pass at least two labels to choose between")
    scores = ll.to_numpy(dtype=np.float64)
    if na is not None:
        scores = scores - na.to_numpy(dtype=np.float64)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = pd.DataFrame(probs, index=ll.index, columns=ll.columns)
    out.insert(0, "label", [ll.columns[j] for j in scores.argmax(axis=1)])
    return out
