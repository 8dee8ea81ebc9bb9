# exercise: 04_preference_pairs
# why: no length check: the frame built from both inputs pads the shorter one with NaN, so
#   different lengths give pairs instead of a ValueError.
import numpy as np


def preference_pairs(grades, query_ids) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.concat(
        [pd.Series(np.asarray(grades, dtype=np.float64)), pd.Series(np.asarray(query_ids))],
        axis=1,
        keys=["g", "q"],
    )
    better, worse = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for _, group in frame.groupby("q", sort=False):
        rows = group.index.to_numpy()
        bi, wi = np.nonzero(group["g"].to_numpy()[:, None] > group["g"].to_numpy()[None, :])
        better.append(rows[bi])
        worse.append(rows[wi])
    better, worse = np.concatenate(better), np.concatenate(worse)
    order = np.lexsort((worse, better))
    return better[order].astype(np.int64), worse[order].astype(np.int64)
