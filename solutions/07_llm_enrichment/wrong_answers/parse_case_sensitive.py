# exercise: 07_parse_validate
# why: compares keys and values without lower-casing: "GENDER: Men" matches nothing.
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
            key = key.strip().strip('"')
            if sep and key and key not in raw:
                raw[key] = value.strip()
    out = {}
    for field, allowed in schema.items():
        value = raw.get(field, "").strip().strip("\"'.,;").strip()
        out[field] = value if value in allowed else None
    return out
