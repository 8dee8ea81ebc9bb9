# exercise: 00_count_by_department
# why: value_counts(dropna=False) counts missing departments as a department of their own
#   (a None/NaN key), which the text says must not be counted.
def count_by_department(catalog: pd.DataFrame) -> dict[str, int]:
    counts = catalog[C.COL_DEPARTMENT].value_counts(dropna=False)
    return {department: int(n) for department, n in counts.items()}
