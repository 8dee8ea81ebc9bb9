# exercise: 07_classify
# why: softmax without subtracting the row maximum: exp(-1000) underflows to 0 and 0 / 0 gives
#   NaN probabilities.
def classify_from_scores(ll, na=None):
    if ll.shape[1] < 2:
        raise ValueError("pass at least two labels to choose between")
    scores = ll.to_numpy(dtype=np.float64)
    if na is not None:
        scores = scores - na[list(ll.columns)].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    out = pd.DataFrame(probs, index=ll.index, columns=ll.columns)
    out.insert(0, "label", [ll.columns[j] for j in scores.argmax(axis=1)])
    return out
