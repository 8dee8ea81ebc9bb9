# exercise: 07_confidence_matrix
# why: sums the weights per (user, product) with a groupby first, then builds a coo_matrix.
def confidence_matrix(events, users, items, weights=EVENT_WEIGHTS):
    row_of = pd.Series(np.arange(len(users)), index=pd.Index(list(users)))
    col_of = pd.Series(np.arange(len(items)), index=pd.Index(list(items)))
    unknown = set(events[COL_EVENT]) - set(weights)
    if unknown:
        raise ValueError(f"no weight for the events {sorted(map(str, unknown))}")
    log = events[[COL_USER_ID, COL_PRODUCT_ID]].assign(
        w=events[COL_EVENT].map(weights).astype(float)
    )
    log = log[log[COL_USER_ID].isin(row_of.index) & log[COL_PRODUCT_ID].isin(col_of.index)]
    sums = log.groupby([COL_USER_ID, COL_PRODUCT_ID], sort=False)["w"].sum().reset_index()
    matrix = sp.coo_matrix(
        (
            sums["w"].to_numpy(),
            (row_of[sums[COL_USER_ID]].to_numpy(), col_of[sums[COL_PRODUCT_ID]].to_numpy()),
        ),
        shape=(len(users), len(items)),
        dtype=np.float32,
    )
    return matrix.tocsr()
