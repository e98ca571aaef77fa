"""The default model's labels, the script each is written in, and how package locales map onto them."""

from __future__ import annotations

import re

LANGUAGES: tuple[str, ...] = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "it", "ja",
    "nl", "pl", "pt", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)

# Unicode character-name prefixes of each language's letters; every other label is written in Latin.
SCRIPTS: dict[str, tuple[str, ...]] = {
    "ar": ("ARABIC",),
    "ur": ("ARABIC",),
    "bg": ("CYRILLIC",),
    "ru": ("CYRILLIC",),
    "el": ("GREEK",),
    "hi": ("DEVANAGARI",),
    "th": ("THAI",),
    "ja": ("CJK", "HIRAGANA", "KATAKANA"),
    "zh": ("CJK",),
}
LATIN = ("LATIN",)

# Scripts without spaces between words: their texts are measured in characters, not words.
UNSPACED = frozenset({"ja", "th", "zh"})


def language_of(locale: str) -> str | None:
    """The label of a locale folder name (zh_Hans, pt_BR, sw_TZ, es-419, sr@latin), None if not ours.

    Regional and script variants fold into their language: Traditional and Simplified Chinese are both zh.
    """
    language = re.split(r"[_@-]", locale, maxsplit=1)[0].lower()
    return language if language in LANGUAGES else None
