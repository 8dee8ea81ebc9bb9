# exercise: 08_parse_validate
# why: reads the "key: value" lines with a regular expression and setdefault, and normalises
#   the vocabulary once per field.
def parse_and_validate(text, schema):
    def norm(v):
        return v.strip().strip("\"'.,;").strip().lower()

    raw = None
    if "{" in text:
        try:
            obj = json.JSONDecoder().raw_decode(text[text.index("{") :])[0]
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            raw = {str(k).strip(): str(v) for k, v in obj.items() if v is not None}
    if raw is None:
        raw = {}
        for match in re.finditer(r"^([^:\n]*):(.*)$", text, flags=re.MULTILINE):
            key = match.group(1).strip().strip('"').lower()
            if key:
                raw.setdefault(key, match.group(2).strip())
    record = {}
    for field, allowed in schema.items():
        wanted = norm(raw[field]) if field in raw else None
        record[field] = next((a for a in allowed if norm(a) == wanted), None)
    return record
