"""A word-level tokenizer: the baseline that shows why encoders use sub-words.

A word-level vocabulary maps every word it has not seen to one unknown token, so new brands,
misspellings and every Chinese phrase collapse into ``<unk>``; WordPiece and SentencePiece split
such words into known pieces instead (Module 1). The tokenizer is a regular Hugging Face fast
tokenizer (``tokenize``, ``unk_token``, ``__call__``), built offline from a word list.

Example:
    >>> tok = word_level_tokenizer(["red", "lipstick"])
    >>> tok.tokenize("red matte lipstick")
    ['red', '<unk>', 'lipstick']
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["word_level_tokenizer"]


def word_level_tokenizer(words: Iterable[str], unk_token: str = "<unk>"):
    """A whitespace word tokenizer whose vocabulary is ``words`` (anything else is unknown).

    Args:
        words: the vocabulary (duplicates ignored; case-sensitive).
        unk_token: the token that stands for every unknown word.

    Returns:
        A ``transformers.PreTrainedTokenizerFast``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {unk_token: 0}
    for word in words:
        vocab.setdefault(str(word), len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token=unk_token))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token=unk_token)
