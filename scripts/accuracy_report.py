"""Accuracy of a language identifier in the store, per language, on text it was not trained on:

- `heldout`: everyday sentences written apart from the training data (tests/data/heldout/);
- `heldout_docs`: documentation-style lines, written apart from the training data
  (tests/data/heldout_docs/): technical sentences, option descriptions, lines full of names;
- `manpages`: paragraphs of Debian's translated manual pages (manpages-fr, manpages-de, ...), fetched
  with `apt-get download` and rendered with groff; kept out of training on purpose: text from
  sources nobody here wrote. A translated page keeps what is in no language (commands, examples,
  file names, see-also lists, its header and footer) and the paragraphs its translators left in
  English: `prose` keeps a paragraph only when most of its words are words, its letters are in the
  language's script, and for the other languages it holds no run of English function words. The
  misses are listed in the report, so what the filter lets through can be read.

Usage: python scripts/accuracy_report.py [--model langid-onnx:latest] [--out reports/accuracy]
The model is run in-process through the service's own code (tokenizer, batching, ONNX backend).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Debian package and man-page locale folders per label: the languages Debian translates manuals into.
MANPAGES = {
    "de": ("manpages-de", ("de",)), "el": ("manpages-el", ("el",)), "en": ("manpages", ("",)), "es": ("manpages-es", ("es",)),
    "fr": ("manpages-fr", ("fr",)), "it": ("manpages-it", ("it",)), "ja": ("manpages-ja", ("ja",)), "nl": ("manpages-nl", ("nl",)),
    "pl": ("manpages-pl", ("pl",)), "pt": ("manpages-pt-br", ("pt_BR",)), "ru": ("manpages-ru", ("ru",)), "tr": ("manpages-tr", ("tr",)),
    "vi": ("manpages-vi", ("vi",)), "zh": ("manpages-zh", ("zh_CN", "zh_TW")),
}
MANPAGE_LINES = 300  # per language, drawn with a fixed seed from every line that passes `prose`
MIN_WORDS = 4
MIN_WORD_SHARE = 0.6  # of the space-separated tokens, those made of letters only
# English function words no other of these languages writes as a word of its own; two of them, and
# a sixth of the words, mark a paragraph left untranslated.
ENGLISH = frozenset("the and of that with which this these from by are be been it its can should must you your if when not have has".split())
WORD = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*[.,;:!?]?$")


def prose(line: str, language: str) -> bool:
    """A paragraph of running text in `language` (see the module docstring)."""
    from train_export.default_corpus.languages import UNSPACED
    from train_export.default_corpus.text_filter import accept

    if not accept(line, language):  # the training filter's script test: mostly the language's script
        return False
    if language in UNSPACED:
        return True
    tokens = line.split()
    words = [t.rstrip(".,;:!?").lower() for t in tokens if WORD.match(t)]
    if len(words) < MIN_WORDS or len(words) < MIN_WORD_SHARE * len(tokens):
        return False
    english = sum(w in ENGLISH for w in words)
    return language == "en" or english < 2 or english < len(words) / 6


def render(page: Path) -> list[str]:
    """One man page as text, one line per paragraph (a very long line length keeps paragraphs whole),
    without its header and footer line."""
    source = gzip.decompress(page.read_bytes()) if page.suffix == ".gz" else page.read_bytes()
    result = subprocess.run(["groff", "-k", "-man", "-Tutf8", "-rLL=4000n", "-P-cbou"], input=source, capture_output=True, timeout=60)
    return [" ".join(line.split()) for line in result.stdout.decode("utf-8", "replace").splitlines() if line.strip()][1:-1]


def manpage_lines(cache: Path) -> dict[str, list[str]]:
    """MANPAGE_LINES lines per language from Debian's translated manual pages (cached in `cache`)."""
    texts: dict[str, list[str]] = {}
    for language, (package, locales) in MANPAGES.items():
        cached = cache / f"{language}.txt"
        if not cached.exists():
            with tempfile.TemporaryDirectory() as scratch:
                subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True, timeout=300)
                (deb,) = Path(scratch).glob("*.deb")
                subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(scratch) / "root")], check=True, timeout=300)
                man = Path(scratch) / "root" / "usr" / "share" / "man"
                pages = sorted(p for locale in locales for p in (man / locale).glob("man*/*") if p.is_file())
                found = dict.fromkeys(line for page in pages for line in render(page) if prose(line, language))
            sample = random.Random(f"manpages:{language}").sample(sorted(found), min(MANPAGE_LINES, len(found)))
            cache.mkdir(parents=True, exist_ok=True)
            cached.write_text("\n".join(sample) + "\n", "utf-8")
        texts[language] = cached.read_text("utf-8").splitlines()
    return texts


def evaluate(classifier, sets: dict[str, dict[str, list[str]]]) -> dict:
    report = {}
    for name, by_language in sets.items():
        texts = [t for texts in by_language.values() for t in texts]
        truth = [language for language, texts in by_language.items() for _ in texts]
        predicted = classifier.predict_labels(texts)
        per_language = {}
        for language in by_language:
            pairs = [(t, p) for t, p, g in zip(texts, predicted, truth) if g == language]
            misses = [(t, p) for t, p in pairs if p != language]
            per_language[language] = {
                "n": len(pairs), "accuracy": round(1 - len(misses) / len(pairs), 4),
                "confused_with": dict(Counter(p for _, p in misses).most_common(3)), "misses": [[t, p] for t, p in misses],
            }
        correct = sum(p == g for p, g in zip(predicted, truth))
        report[name] = {"n": len(texts), "accuracy": round(correct / len(texts), 4), "per_language": per_language}
    return report


def markdown(model: str, report: dict) -> str:
    out = [f"# Accuracy of `{model}` on text it was not trained on", "", "Made by `python scripts/accuracy_report.py` (see its docstring).", ""]
    for name, result in report.items():
        out += [f"## {name}: {result['accuracy']:.2%} of {result['n']}", "", "| language | texts | accuracy | taken for |", "|---|--:|--:|---|"]
        for language, r in result["per_language"].items():
            confused = ", ".join(f"{k} {v}" for k, v in r["confused_with"].items())
            out.append(f"| {language} | {r['n']} | {r['accuracy']:.1%} | {confused} |")
        out += ["", "Misses (text, predicted):", ""]
        out += [f"- {language}: {text[:120]!r} -> {predicted}" for language, r in result["per_language"].items() for text, predicted in r["misses"]]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="langid-onnx:latest")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "accuracy", help="writes OUT.md and OUT.json")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "textclf-manpages", help="rendered man-page lines")
    args = parser.parse_args(argv)

    import bentoml

    from textclf.config import settings
    from textclf.core.loading import onnx_classifier

    model = bentoml.models.get(args.model)
    classifier = onnx_classifier(model.path, model.info.metadata, settings())
    from train_export.default_corpus.heldout import DOCS, SENTENCES, heldout_lines

    sets = {SENTENCES: heldout_lines(SENTENCES), DOCS: heldout_lines(DOCS)}
    if shutil.which("apt-get") and shutil.which("groff"):
        sets["manpages"] = manpage_lines(args.cache)
    else:
        print("manpages: skipped (needs Debian's apt-get and groff)")
    report = evaluate(classifier, sets)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"model": str(model.tag), **report}, ensure_ascii=False, indent=1), "utf-8")
    args.out.with_suffix(".md").write_text(markdown(str(model.tag), report), "utf-8")
    for name, result in report.items():
        worst = sorted(result["per_language"].items(), key=lambda kv: kv[1]["accuracy"])[:4]
        print(f"{name}: {result['accuracy']:.2%} of {result['n']}; weakest: " + ", ".join(f"{k} {v['accuracy']:.1%}" for k, v in worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
