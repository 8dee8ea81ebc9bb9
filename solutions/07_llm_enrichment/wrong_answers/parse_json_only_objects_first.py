# exercise: 07_parse_validate
# why: when the text has a "{", trusts whatever JSON it decodes: a JSON list or a broken object
#   gives an empty record instead of falling back to the "key: value" lines.
def parse_and_validate(text, schema):
    start = text.find("{") if "{" in text else text.find("[")
    if start >= 0:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            obj = {}
        raw = {str(k).strip(): str(v) for k, v in obj.items()} if isinstance(obj, dict) else {}
    else:
        raw = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            key = key.strip().strip('"').lower()
            if sep and key and key not in raw:
                raw[key] = value.strip()

    def norm(v):
        return v.strip().strip("\"'.,;").strip().lower()

    out = {}
    for field, allowed in schema.items():
        lookup = {norm(a): a for a in allowed}
        out[field] = lookup.get(norm(raw[field])) if field in raw else None
    return out
