# exercise: 08_classify
# why: appends the "label" column after the probabilities instead of putting it first.
def classify_from_scores(ll, na=None):
    if ll.shape[1] < 2:
        raise ValueError("pass at least two labels to choose between")
    scores = ll if na is None else ll - na
    probs = np.exp(scores.sub(scores.max(axis=1), axis=0))
    out = probs.div(probs.sum(axis=1), axis=0)
    out["label"] = scores.idxmax(axis=1)
    return out
