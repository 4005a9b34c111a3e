"""Which language a text is in, as far as this product needs: Chinese or English."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# A text counts as Chinese when this share of its letters are Chinese characters: "在杭州做
# barista，latte art比赛拿过奖" is Chinese with English words in it, not English.
CHINESE_FROM = 0.3


def cjk_share(text: str) -> float:
    """The share of Chinese characters among the letters of `text` (0.5 when it has none)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.5
    return sum(1 for c in letters if _CJK.match(c)) / len(letters)


def language_of(*texts: str | None, default: str = "en") -> str:
    """ "zh" or "en" for what the texts say together; `default` when they have no letters."""
    joined = " ".join(t for t in texts if t)
    if not any(c.isalpha() for c in joined):
        return default
    return "zh" if cjk_share(joined) >= CHINESE_FROM else "en"
