# exercise: 03_mine_pairs
# why: sessions numbered with shift/cumsum over the sorted frame, one set of products per
#   session from groupby, and the ordered pairs from itertools.permutations counted by a Counter.
import itertools
from collections import Counter


def mine_pairs(events: pd.DataFrame, gap_minutes: float = 30.0) -> pd.DataFrame:
    """Ordered product pairs engaged with in one session, with their session counts."""
    ev = events.loc[events[C.COL_EVENT].isin({"click", "purchase"})].copy()
    ev[C.COL_TIMESTAMP] = pd.to_datetime(ev[C.COL_TIMESTAMP])
    ev = ev.sort_values([C.COL_USER_ID, C.COL_TIMESTAMP], kind="mergesort")
    users = ev[C.COL_USER_ID]
    starts = (users != users.shift()) | (
        ev[C.COL_TIMESTAMP].diff() > pd.Timedelta(minutes=gap_minutes)
    )
    session = starts.cumsum()
    counter = Counter()
    for products in ev.groupby(session.to_numpy())[C.COL_PRODUCT_ID]:
        counter.update(itertools.permutations(sorted(set(products[1])), 2))
    rows = [(a, b, n) for (a, b), n in counter.items()]
    out = pd.DataFrame(rows, columns=["anchor", "positive", "count"])
    out = out.sort_values(by=["count", "anchor", "positive"], ascending=[False, True, True])
    return out.reset_index(drop=True)
