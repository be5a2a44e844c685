"""A character-level tokenizer with a fixed vocabulary.

Every task in `data_gen` writes plain text from this alphabet, one token per character, so an
encoded example can be read back by eye. The vocabulary never depends on the tasks in a sweep:
a model trained on one mixture can be evaluated on another.

    id 0        "<pad>"  padding; never a training target
    id 1        "\\n"     end of an example (the model learns to emit it after the answer)
    id 2        " "
    ids 3-12    "0".."9"
    ids 13-30   "+-*/%^=()[],.:;?!'"
    ids 31-56   "a".."z"  (for worded formats and templates)

VOCAB_SIZE is 57.
"""
from __future__ import annotations

from typing import Iterable

import torch

PAD = "<pad>"
EOS = "\n"
DIGITS = "0123456789"
PUNCTUATION = "+-*/%^=()[],.:;?!'"
LETTERS = "abcdefghijklmnopqrstuvwxyz"

VOCAB: tuple[str, ...] = (PAD, EOS, " ", *DIGITS, *PUNCTUATION, *LETTERS)
VOCAB_SIZE = len(VOCAB)
STOI = {ch: i for i, ch in enumerate(VOCAB)}
PAD_ID = STOI[PAD]
EOS_ID = STOI[EOS]
DIGIT_IDS = tuple(STOI[d] for d in DIGITS)


def encode(text: str) -> list[int]:
    """Text -> token ids. Raises ValueError naming the first character outside the vocabulary."""
    try:
        return [STOI[ch] for ch in text]
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary "
                         f"(valid: digits, lowercase letters, space, newline and "
                         f"{PUNCTUATION!r})") from None


def decode(ids: Iterable[int] | torch.Tensor) -> str:
    """Token ids -> text; padding decodes to nothing."""
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    out = []
    for i in ids:
        if not 0 <= i < VOCAB_SIZE:
            raise ValueError(f"token id {i} is outside the vocabulary (0..{VOCAB_SIZE - 1})")
        if i != PAD_ID:
            out.append(VOCAB[i])
    return "".join(out)
