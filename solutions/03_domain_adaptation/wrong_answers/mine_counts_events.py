# exercise: 03_mine_pairs
# why: counts pairs of events, not sessions: a product clicked twice in a session (or clicked,
#   then bought) counts that session two or more times, while count is the number of sessions.
def mine_pairs(events: pd.DataFrame, gap_minutes: float = 30.0) -> pd.DataFrame:
    """Ordered product pairs engaged with in one session, with their session counts."""
    ev = events[events[C.COL_EVENT].isin(["click", "purchase"])]
    ev = ev.sort_values([C.COL_USER_ID, C.COL_TIMESTAMP], kind="stable")
    ts = pd.to_datetime(ev[C.COL_TIMESTAMP])
    new = ev[C.COL_USER_ID].ne(ev[C.COL_USER_ID].shift()) | (
        ts.diff() > pd.Timedelta(minutes=gap_minutes)
    )
    items = pd.DataFrame({"s": new.cumsum().to_numpy(), "pid": ev[C.COL_PRODUCT_ID].to_numpy()})
    pairs = items.merge(items, on="s", suffixes=("_a", "_b"))
    pairs = pairs[pairs["pid_a"] != pairs["pid_b"]]
    out = pairs.groupby(["pid_a", "pid_b"]).size().reset_index(name="count")
    out.columns = ["anchor", "positive", "count"]
    out = out.sort_values(["count", "anchor", "positive"], ascending=[False, True, True])
    return out.reset_index(drop=True)
