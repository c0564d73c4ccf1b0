"""Text as Salesforce stores it: trimmed the Java way, never empty, lengths in UTF-16 code units.

Salesforce does not store a string field the way it was sent (reference B10): leading and
trailing whitespace is removed, "" becomes null, and the field lengths (Subject 255, Location 255,
Description 32,000) count UTF-16 code units, so a character outside the Basic Multilingual Plane
(most emoji) counts 2 and an over-long value is refused with STRING_TOO_LONG. calsync writes
values already in that form (`stored`), so that what it records as its own write is what
Salesforce holds, and a read-back never differs from it.
"""

from __future__ import annotations

# Java's String.trim() removes every character up to U+0020 (spaces, tabs, newlines and the
# other C0 controls) and nothing else: a non-breaking space (U+00A0) survives (reference B10).
_JAVA_WHITESPACE = "".join(chr(code) for code in range(0x21))


def trim(text: str) -> str:
    """`text` without leading and trailing characters up to U+0020, as Java's `String.trim()`."""
    return text.strip(_JAVA_WHITESPACE)


def units(text: str) -> int:
    """The length Salesforce counts: UTF-16 code units (an astral character counts 2)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 code units, never between the two halves of a
    surrogate pair (half an emoji is not text)."""
    if len(text) <= limit // 2 or units(text) <= limit:
        return text
    head = text.encode("utf-16-le", "surrogatepass")[: 2 * limit]
    if 0xD800 <= int.from_bytes(head[-2:], "little") <= 0xDBFF:
        head = head[:-2]  # a high surrogate whose low half was cut off
    return head.decode("utf-16-le", "surrogatepass")


def stored(text: str | None, limit: int) -> str | None:
    """The value Salesforce stores for `text` in a field of `limit` code units: trimmed, cut
    within the limit (trimmed again: the cut may leave a space at the end), None for empty."""
    if text is None:
        return None
    value = trim(cut(trim(text), limit))
    return value or None
