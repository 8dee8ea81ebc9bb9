# exercise: 01_unk_rate
# why: divides by the number of whitespace-separated words instead of the number of tokens
#   (a Chinese title is one "word" but many tokens).
def unk_rate(tokenizer, texts: list[str]) -> float:
    words = sum(len(text.split()) for text in texts)
    unknown = sum(t == tokenizer.unk_token for text in texts for t in tokenizer.tokenize(text))
    return float(unknown / words) if words else 0.0
