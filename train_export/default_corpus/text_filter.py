"""Turning user-interface strings into plain sentences, and deciding which are worth training on."""

from __future__ import annotations

import html
import re
import unicodedata

from train_export.default_corpus.languages import LATIN, SCRIPTS, UNSPACED

_TAG = re.compile(r"<[^<>]*>")
# URLs, `code` and Trac's [[macro]] calls are not written in any language.
_NOT_PROSE = re.compile(r"\S+://\S+|`[^`]*`|\[\[.*?\]\]")
# printf (%s, %(name)d, %.2f, strftime's %Y), Jinja ({{ name }}), Zope (${name}) and str.format / ICU
# ({0}, {name}, {n, number}).
_PLACEHOLDER = re.compile(r"%%|%(?:\([^)]*\))?[-#0+]*(?:\d+|\*)?(?:\.\d+)?[a-zA-Z]|\{\{.*?\}\}|\$?\{[^{}]*\}")
# "&File" and "_File" mark a keyboard shortcut; CJK catalogs write it "ファイル(&F)".
_ACCELERATOR = re.compile(r"[(（][&_]\w[)）]|(?<!\w)[&_](?=\w)")
_EMPTY_PAIR = re.compile(r"\(\s*\)|\[\s*\]|\"\s*\"|'\s*'|«\s*»|“\s*”|„\s*“|‘\s*’|「\s*」|『\s*』|（\s*）|【\s*】")
# The gaps a removed placeholder leaves: "Ticket ." "Hello,." "(now )"; no language writes these.
_GAP = re.compile(r"\s+(?=[.,)\]])|(?<=[(\[])\s+|,(?=[.!?])")
# What a removed placeholder leaves at either end ("Version: %s" -> "Version:"); sentence-final
# . ! ? … and Spanish's opening ¿ ¡ stay, they are part of how each language is written.
_LEADING_NOISE = " .,;:!?·•*/|\\-–—>»"
_TRAILING_NOISE = " ,;:·•*/|\\-–—(<«"

_MIN_WORDS = 3
_MIN_UNSPACED_CHARS = 4


def _placeholder(match: re.Match[str]) -> str:
    return "%" if match.group() == "%%" else " "


def clean(raw: str) -> str | None:
    """The prose in a catalog string; None when nothing is left, or when what is left mixes two languages."""
    text = _TAG.sub(" ", unicodedata.normalize("NFC", raw))
    text = _NOT_PROSE.sub(" ", html.unescape(text))
    text = _PLACEHOLDER.sub(_placeholder, text)
    if "{" in text or "}" in text:
        # Nested ICU plural/select ("{n, plural, one {file} other {files}}") keeps English inside translations.
        return None
    text = _ACCELERATOR.sub("", text)
    # Tokens with an underscore are identifiers (setting names, file names), not words.
    text = " ".join(token for token in text.split() if "_" not in token)
    text = _EMPTY_PAIR.sub(" ", text)
    text = _GAP.sub("", " ".join(text.split()))
    return text.lstrip(_LEADING_NOISE).rstrip(_TRAILING_NOISE) or None


def _in_script(char: str, prefixes: tuple[str, ...]) -> bool:
    return unicodedata.name(char, "").startswith(prefixes)


def _is_kana(char: str) -> bool:
    return _in_script(char, ("HIRAGANA", "KATAKANA"))


def _script_share(text: str, language: str) -> float:
    """The share of the text's letters that are written in the language's script."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    prefixes = SCRIPTS.get(language, LATIN)
    return sum(_in_script(c, prefixes) for c in letters) / len(letters)


def accept(text: str, language: str) -> bool:
    """Long enough to say something, and mostly in the script its catalog claims.

    The script test drops strings a translator left in English in a Russian or Thai catalog; for
    Japanese and Chinese it also keeps the shared Han characters apart: Japanese needs kana, and
    Chinese has none.
    """
    if _script_share(text, language) <= 0.5:
        return False
    if language == "ja" and not any(map(_is_kana, text)):
        return False
    if language == "zh" and any(map(_is_kana, text)):
        return False
    if language in UNSPACED:
        return sum(_in_script(c, SCRIPTS[language]) for c in text) >= _MIN_UNSPACED_CHARS
    return sum(any(c.isalpha() for c in word) for word in text.split()) >= _MIN_WORDS
