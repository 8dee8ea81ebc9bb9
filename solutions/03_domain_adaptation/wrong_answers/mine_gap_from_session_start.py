# exercise: 03_mine_pairs
# why: measures the gap from the first event of the session, not from the user's previous kept
#   event: a long session of events a few minutes apart is cut every gap_minutes.
def mine_pairs(events: pd.DataFrame, gap_minutes: float = 30.0) -> pd.DataFrame:
    """Ordered product pairs engaged with in one session, with their session counts."""
    ev = events[events[C.COL_EVENT].isin(["click", "purchase"])]
    ev = ev.sort_values([C.COL_USER_ID, C.COL_TIMESTAMP], kind="stable")
    counts: dict = {}
    sessions, start, prev_user = [], None, None
    for user, pid, ts in zip(
        ev[C.COL_USER_ID], ev[C.COL_PRODUCT_ID], pd.to_datetime(ev[C.COL_TIMESTAMP])
    ):
        if user != prev_user or ts - start > pd.Timedelta(minutes=gap_minutes):
            sessions.append(set())
            start = ts
        sessions[-1].add(pid)
        prev_user = user
    for items in sessions:
        for a in items:
            for b in items:
                if a != b:
                    counts[(a, b)] = counts.get((a, b), 0) + 1
    out = pd.DataFrame(
        [(a, b, n) for (a, b), n in counts.items()], columns=["anchor", "positive", "count"]
    )
    out = out.sort_values(["count", "anchor", "positive"], ascending=[False, True, True])
    return out.reset_index(drop=True)
