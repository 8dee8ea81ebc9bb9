# exercise: 07_parse_validate
# why: builds the line record with dict assignment, so a key that appears twice keeps its last
#   value instead of the first.
def parse_and_validate(text, schema):
    raw = None
    start = text.find("{")
    if start >= 0:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
            if isinstance(obj, dict):
                raw = {str(k).strip(): str(v) for k, v in obj.items() if v is not None}
        except json.JSONDecodeError:
            raw = None
    if raw is None:
        raw = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip():
                raw[key.strip().strip('"').lower()] = value.strip()

    def norm(v):
        return v.strip().strip("\"'.,;").strip().lower()

    out = {}
    for field, allowed in schema.items():
        lookup = {norm(a): a for a in allowed}
        out[field] = lookup.get(norm(raw[field])) if field in raw else None
    return out
