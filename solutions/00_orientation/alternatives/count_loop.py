# exercise: 00_count_by_department
# why: a plain loop with pd.notna instead of value_counts; same dict, Python ints.
def count_by_department(catalog: pd.DataFrame) -> dict[str, int]:
    counts: dict[str, int] = {}
    for department in catalog[C.COL_DEPARTMENT]:
        if pd.notna(department):
            counts[str(department)] = counts.get(str(department), 0) + 1
    return counts
