# exercise: 03_split_queries
# why: validates the number of test groups instead of the share: raises whenever every group
#   (or none) would go to test, so an allowed share such as 0.9 of 3 groups (ceil gives 3)
#   raises, while the text only rejects shares outside (0, 1).
import math


def split_queries(query_ids: list, groups: list, test_share: float, seed: int) -> tuple:
    """(train_ids, test_ids): whole groups of queries on one side, in input order."""
    if len(query_ids) != len(groups):
        raise ValueError("pass one group per query")
    if len(set(query_ids)) != len(query_ids):
        raise ValueError("query_ids has duplicates")
    uniq = sorted(set(groups))
    n_test = math.ceil(test_share * len(uniq))
    if not 0 < n_test < len(uniq):
        raise ValueError("the split must leave groups on both sides")
    order = np.random.default_rng(seed).permutation(len(uniq))
    test_groups = {uniq[i] for i in order[:n_test]}
    train = [q for q, g in zip(query_ids, groups) if g not in test_groups]
    test = [q for q, g in zip(query_ids, groups) if g in test_groups]
    return train, test
