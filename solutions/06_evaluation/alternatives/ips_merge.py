# exercise: 06_ips
# why: vectorised: the new ranks as a DataFrame merged onto the clicked rows of the log.
def ips_estimate(log, ranking, propensity, k=10):
    prop = np.asarray(propensity, dtype=float)
    if log.empty:
        raise ValueError("the log is empty: nothing to estimate")
    if not 1 <= k <= prop.size:
        raise ValueError(f"k={k}: must be in 1..{prop.size}")
    if not log[C.COL_POSITION].between(1, prop.size).all():
        raise ValueError(f"a logged position is outside 1..{prop.size}")
    ranks = pd.DataFrame(
        [(q, d, r) for q, docs in ranking.items() for r, d in enumerate(list(docs)[:k], start=1)],
        columns=[C.COL_QUERY_ID, C.COL_PRODUCT_ID, "new_rank"],
    )
    clicked = log[log["clicked"].astype(bool)]
    hits = clicked.merge(ranks, on=[C.COL_QUERY_ID, C.COL_PRODUCT_ID], how="inner")
    ratio = prop[hits["new_rank"].to_numpy() - 1] / prop[hits[C.COL_POSITION].to_numpy() - 1]
    return float(ratio.sum() / log["session"].nunique())
