"""English prose for the speech synthesizers to read.

The text is Lewis Carroll's *Alice's Adventures in Wonderland*, chapters I-II (public
domain, about 4,300 words), which Debian's ``flite`` package ships as
``/usr/share/doc/flite/examples/alice``; flite is needed for synthesis anyway, so no extra
package is involved.  The book is cleaned (typewriter quotes, chapter headings, line
breaks), split into sentences, and cut or joined into utterances of a few seconds.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from ..errors import MissingToolError

#: places the Alice text is looked for (Debian, then a source build of flite)
TEXT_CANDIDATES = (
    Path("/usr/share/doc/flite/examples/alice"),
    Path("/usr/local/share/doc/flite/examples/alice"),
)


def _clean(raw: str) -> str:
    text = raw.replace("`", "'").replace("''", "'")
    text = re.sub(r"(?m)^\s*ALICE'S ADVENTURES IN WONDERLAND.*$", " ", text)
    text = re.sub(r"(?m)^\s*CHAPTER [IVXLC]+:.*$", " ", text)
    text = re.sub(r"-\s*\n\s*", "-", text)  # hyphenated line breaks
    text = re.sub(r"\*+", " ", text)
    text = re.sub(r"\b([A-Z]{2,})\b", lambda m: m.group(1).lower(), text)  # SHOUTED words
    text = re.sub(r"\s+", " ", text)
    return text.strip()


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at ., ! or ? (keeping closing quotes and brackets)."""
    parts = re.split(r"(?<=[.!?])['\")]*\s+(?=['\"(]?[A-Z])", text)
    out = []
    for p in parts:
        p = p.strip(" '")
        if re.search(r"[A-Za-z]", p):
            out.append(p)
    return out


def _chunk(sentence: str, max_words: int) -> list[str]:
    """Cut a long sentence at punctuation (else at word boundaries) into pieces of at most
    ``max_words`` words (a tail of under 4 words joins the last piece)."""
    words = sentence.split()
    if len(words) <= max_words:
        return [sentence]
    pieces, cur = [], []
    for w in words:
        cur.append(w)
        at_punct = w[-1] in ",;:" and len(cur) >= max_words // 2
        if len(cur) >= max_words or at_punct:
            pieces.append(" ".join(cur).rstrip(",;:"))
            cur = []
    if cur:
        if pieces and len(cur) < 4:
            pieces[-1] = pieces[-1] + " " + " ".join(cur)
        else:
            pieces.append(" ".join(cur))
    return pieces


@functools.lru_cache(maxsize=4)
def load_sentences(max_words: int = 22, path: str | None = None) -> tuple[str, ...]:
    """The utterance pool: Alice sentences cut to about ``max_words`` words (about 8 s)."""
    candidates = [Path(path)] if path else list(TEXT_CANDIDATES)
    for p in candidates:
        if p.is_file():
            raw = p.read_text(encoding="latin-1")
            break
    else:
        raise MissingToolError(
            "no text to synthesize: the flite example text /usr/share/doc/flite/examples/alice "
            "is missing (apt-get install flite, with documentation installed)")
    pool: list[str] = []
    for s in split_sentences(_clean(raw)):
        pool.extend(_chunk(s, max_words))
    return tuple(pool)


def pick_utterance(rng: np.random.Generator, pool: tuple[str, ...], min_words: int = 6,
                   max_words: int = 22) -> str:
    """Consecutive sentences from a random place in ``pool``, joined until at least
    ``min_words`` words (and at most ``max_words`` unless one sentence is longer)."""
    i = int(rng.integers(len(pool)))
    words = pool[i].split()
    j = i + 1
    while len(words) < min_words and j < len(pool):
        nxt = pool[j].split()
        if len(words) + len(nxt) > max_words:
            break
        words += nxt
        j += 1
    return " ".join(words)
