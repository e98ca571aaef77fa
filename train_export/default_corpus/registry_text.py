"""Natural-language text that installed PyPI packages ship, by language.

Translation catalogs are the human-written sentences a package registry carries in many languages
at once, each already labelled by its locale folder. Every source reads files only: nothing is
imported from the packages and nothing is fetched.
"""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from functools import cache, partial
from pathlib import Path

import polib

from train_export.default_corpus.languages import LANGUAGES, language_of
from train_export.default_corpus.text_filter import accept, clean

Texts = dict[str, set[str]]  # language -> raw strings, English being the catalogs' source strings


def package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it: importing Kolibri sets up its
    environment (sys.path, environment variables) as a side effect."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{name!r} supplies text for the default corpus: install the corpus extra (pip install -e .[export,corpus])", name=name)
    return Path(spec.origin).parent


def gettext_catalogs(package: str, pattern: str = "**/locale/*/LC_MESSAGES/*.mo") -> Texts:
    """Translations in a package's compiled gettext catalogs, and their English msgids.

    Compiled .mo files rather than .po: every translated package ships them (Trac ships nothing
    else), and msgfmt has already left the fuzzy entries out.
    """
    texts: Texts = defaultdict(set)
    for path in sorted(package_dir(package).glob(pattern)):
        language = language_of(path.parent.parent.name)
        if language is None:
            continue
        for entry in polib.mofile(str(path)):
            # Plural entries: the singular forms carry the same words as the others.
            source = entry.msgid
            translation = entry.msgstr or entry.msgstr_plural.get(0, "")
            texts["en"].add(source)
            if language != "en" and translation and translation != source:
                texts[language].add(translation)
    return texts


def kolibri() -> Texts:
    """Kolibri's server catalogs and its interface messages, which it keeps as JSON.

    Kolibri, an offline learning app, is translated in depth into Swahili, Urdu and Hindi, which
    the developer-tool catalogs barely cover. Its vendored libraries (kolibri/dist) are left out:
    they would only repeat Django's catalogs.
    """
    texts = gettext_catalogs("kolibri", "locale/*/LC_MESSAGES/*.mo")
    locale_dir = package_dir("kolibri") / "locale"
    english = {path.name: json.loads(path.read_text("utf-8")) for path in (locale_dir / "en" / "LC_MESSAGES").glob("*.json")}
    texts["en"].update(message for messages in english.values() for message in messages.values())
    for path in sorted(locale_dir.glob("*/LC_MESSAGES/*.json")):
        language = language_of(path.parent.parent.name)
        if language in (None, "en"):
            continue
        source = english.get(path.name, {})
        for key, translation in json.loads(path.read_text("utf-8")).items():
            # An untranslated message is empty or a copy of the English one.
            if translation and translation != source.get(key):
                texts[language].add(translation)
    return texts


# Between them these translate every label in depth. Django also covers Swahili and Urdu a little,
# django-allauth and Plone are most of the Thai, Trac fills in Dutch, Polish and Japanese. Sphinx
# and Django REST framework were measured too: they would add no language that lacks text.
SOURCES: dict[str, Callable[[], Texts]] = {
    "django": partial(gettext_catalogs, "django"),
    "django-allauth": partial(gettext_catalogs, "allauth"),
    "trac": partial(gettext_catalogs, "trac"),
    "plone.app.locales": partial(gettext_catalogs, "plone.app.locales", "locales/*/LC_MESSAGES/*.mo"),
    "kolibri": kolibri,
}


def filtered_texts(texts: Texts) -> dict[str, set[str]]:
    """One source's texts after cleaning and the length and script tests."""
    kept: dict[str, set[str]] = defaultdict(set)
    for language, raw_texts in texts.items():
        for raw in raw_texts:
            text = clean(raw)
            if text and accept(text, language):
                kept[language].add(text)
    return kept


@cache
def registry_texts() -> Mapping[str, tuple[str, ...]]:
    """Every source's usable texts per language, sorted so that seeded sampling is reproducible.

    A text found under two languages (a translator's copy of another string, a phrase two
    languages share) is dropped from both: either label would be a guess.
    """
    languages_of: dict[str, set[str]] = defaultdict(set)
    for source in SOURCES.values():
        for language, texts in filtered_texts(source()).items():
            for text in texts:
                languages_of[text].add(language)
    by_language: dict[str, list[str]] = {language: [] for language in LANGUAGES}
    for text, languages in languages_of.items():
        if len(languages) == 1:
            (language,) = languages
            by_language[language].append(text)
    return {language: tuple(sorted(texts)) for language, texts in by_language.items()}
