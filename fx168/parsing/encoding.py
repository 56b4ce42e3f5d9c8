"""Garbled text (mojibake): what a page looks like when its bytes were decoded as the wrong charset.

The portal writes Chinese. A GBK or UTF-8 page decoded as ISO-8859-1 (or cp1252) turns every
Chinese character into two or three Latin-1 letters and symbols ('Ñë' for 央); decoded as
UTF-8 with replacement, it turns into U+FFFD replacement characters; re-encoded the wrong
way round, it shows the classic '锟斤拷'. Text like that is worse than none: it would be
stored, indexed and exported as if it were the article. Accented letters in a Western name
(Société Générale) are a few percent of a text, never most of it, and pass.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"
#: Share of a field's visible characters that may be U+FFFD before it counts as garbled.
MAX_REPLACEMENT_SHARE = 0.01
#: Latin-1 characters in a field: at least this many, making up at least this share of its
#: letters, mean the field was decoded with the wrong charset.
MIN_LATIN1 = 4
MAX_LATIN1_SHARE = 0.5
#: Latin-1 characters Chinese financial text does use.
_USUAL_LATIN1 = frozenset("\u00a0·×÷°±¥")
#: U+FFFD encoded as UTF-8 and read back as GBK.
_DOUBLE_DECODED = "锟斤拷"


def _unusual_latin1(char: str) -> bool:
    return "\x80" <= char <= "\xff" and char not in _USUAL_LATIN1


def garbled(text: str | None) -> str | None:
    """Why ``text`` looks wrongly decoded, or None if it looks like text."""
    if not text:
        return None
    visible = [char for char in text if not char.isspace()]
    if not visible:
        return None
    replacements = text.count(REPLACEMENT)
    if replacements and replacements / len(visible) >= MAX_REPLACEMENT_SHARE:
        return f"{replacements} replacement characters (U+FFFD) in {len(visible)}"
    if _DOUBLE_DECODED in text:
        return f"{_DOUBLE_DECODED!r}: replacement characters decoded twice"
    latin1 = sum(1 for char in visible if _unusual_latin1(char))
    if latin1 >= MIN_LATIN1:
        letters = sum(1 for char in visible if char.isalpha() or _unusual_latin1(char))
        if latin1 / letters >= MAX_LATIN1_SHARE:
            sample = "".join(visible[:12])
            return f"Latin-1 characters where Chinese is expected ({latin1} of {letters} letters: {sample!r})"
    return None
