# exercise: 07_parse_validate
# why: matches a value by substring ("men" is found in "men, women" and in "women") instead of
#   comparing the whole normalised value.
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
            key = key.strip().strip('"').lower()
            if sep and key and key not in raw:
                raw[key] = value.strip()
    out = {}
    for field, allowed in schema.items():
        value = raw.get(field, "").lower()
        out[field] = next((a for a in allowed if value and a.lower() in value), None)
    return out
