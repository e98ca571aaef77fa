"""Natural-language text that PyPI packages ship, by language.

Translation catalogs are the human-written sentences a package registry carries in many languages
at once, each already labelled by its locale folder. Every source reads files only: nothing is
imported from the packages. Most are installed with the corpus extra; packages that cannot be
installed here (their dependencies need system libraries) are read straight from their wheels,
pinned by version and sha256 and fetched once with pip into the environment.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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


def translations(catalogs: Iterable[tuple[str, polib.MOFile]]) -> Texts:
    """The translated strings of (locale folder, catalog) pairs, and their English msgids.

    Compiled .mo files rather than .po: every translated package ships them (Trac ships nothing
    else), and msgfmt has already left the fuzzy entries out.
    """
    texts: Texts = defaultdict(set)
    for locale, catalog in catalogs:
        language = language_of(locale)
        if language is None:
            continue
        for entry in catalog:
            # Plural entries: the singular forms carry the same words as the others.
            source = entry.msgid
            translation = entry.msgstr or entry.msgstr_plural.get(0, "")
            texts["en"].add(source)
            if language != "en" and translation and translation != source:
                texts[language].add(translation)
    return texts


def gettext_catalogs(package: str, pattern: str = "**/locale/*/LC_MESSAGES/*.mo") -> Texts:
    """The compiled catalogs of an installed package."""
    return translations((path.parent.parent.name, polib.mofile(str(path))) for path in sorted(package_dir(package).glob(pattern)))


@dataclass(frozen=True)
class Wheel:
    """A wheel read as an archive, never installed."""

    requirement: str  # name==version
    sha256: str
    pattern: str = "*/locale/*/LC_MESSAGES/*.mo"  # members holding the catalogs

    @property
    def folder(self) -> Path:
        return Path(sys.prefix) / "textclf-corpus-wheels"

    @property
    def version(self) -> str:
        return self.requirement.partition("==")[2]

    def _cached(self) -> Path | None:
        name = self.requirement.partition("==")[0].replace("-", "_")
        return next((p for p in self.folder.glob(f"{name}-*.whl") if hashlib.sha256(p.read_bytes()).hexdigest() == self.sha256), None)

    def path(self) -> Path:
        """The wheel, fetched with pip (hash-checked) on first use."""
        if (cached := self._cached()) is None:
            with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
                requirements.write(f"{self.requirement} --hash=sha256:{self.sha256}\n")
                requirements.flush()
                command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:", "--require-hashes",
                           "-r", requirements.name, "-d", str(self.folder)]
                subprocess.run(command, check=True)
            cached = self._cached()
        assert cached is not None, f"pip downloaded {self.requirement} but no wheel with sha256 {self.sha256} is in {self.folder}"
        return cached

    def catalogs(self) -> Texts:
        with zipfile.ZipFile(self.path()) as archive:
            members = sorted(name for name in archive.namelist() if fnmatch.fnmatch(name, self.pattern))
            return translations((Path(name).parent.parent.name, polib.mofile(archive.read(name))) for name in members)


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


# Read from their wheels: installing either needs system libraries (GTK for Gramps, PostgreSQL and
# more for pretix). Gramps, a genealogy program, brings technical prose and a translated --help
# option table in 15 of the labels, the only deep Bulgarian and Russian besides Kolibri; pretix, a
# ticketing system, long help texts and e-mails in Dutch, Portuguese, Spanish and French.
WHEELS = {
    "gramps": Wheel("gramps==6.0.8", "56f03bcb643320eb9f9892d4c3f8bbe7c4c4d2e4c71e56f598584af24561ec1c", "*/share/locale/*/LC_MESSAGES/gramps.mo"),
    "pretix": Wheel("pretix==2026.8.0", "a78932e698778d873530d67f25a57c28d1c09b1bfb1a22ec817c00d90397db85", "pretix/locale/*/LC_MESSAGES/*.mo"),
}

# Between them these translate every label in depth. Django also covers Swahili and Urdu a little,
# django-allauth and Plone are most of the Thai, Trac fills in Dutch, Polish and Japanese. Sphinx
# and Django REST framework were measured too: they would add no language that lacks text.
SOURCES: dict[str, Callable[[], Texts]] = {
    "django": partial(gettext_catalogs, "django"),
    "django-allauth": partial(gettext_catalogs, "allauth"),
    "trac": partial(gettext_catalogs, "trac"),
    "plone.app.locales": partial(gettext_catalogs, "plone.app.locales", "locales/*/LC_MESSAGES/*.mo"),
    "kolibri": kolibri,
} | {name: wheel.catalogs for name, wheel in WHEELS.items()}


def filtered_texts(texts: Texts) -> dict[str, set[str]]:
    """One source's texts after cleaning and the length and script tests."""
    kept: dict[str, set[str]] = defaultdict(set)
    for language, raw_texts in texts.items():
        # One line, one text: a help screen's option table is one catalog string of many lines.
        for line in (line for raw in raw_texts for line in raw.splitlines()):
            text = clean(line)
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
