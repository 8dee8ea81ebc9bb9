# exercise: 03_split_queries
# why: np.unique (distinct and sorted at once), the permuted labels themselves
#   (rng.permutation of the label array shuffles exactly as permutation(n_groups)) and a
#   boolean mask from np.isin instead of a set of groups.
import math


def split_queries(query_ids: list, groups: list, test_share: float, seed: int) -> tuple:
    """(train_ids, test_ids): whole groups of queries on one side, in input order."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    ids, grp = list(query_ids), np.asarray(list(groups))
    if len(ids) != len(grp):
        raise ValueError("query_ids and groups differ in length")
    if len(np.unique(np.asarray(ids))) != len(ids):
        raise ValueError("duplicate query ids")
    labels = np.unique(grp)
    shuffled = np.random.default_rng(seed).permutation(labels)
    in_test = np.isin(grp, shuffled[: math.ceil(test_share * len(labels))])
    train = [q for q, t in zip(ids, in_test) if not t]
    test = [q for q, t in zip(ids, in_test) if t]
    return train, test
