"""The recipe's code digest (train_export/recipe.py): an edit to the code that shapes the weights is
another recipe; an edit to the default corpus's builders or held-out readers is not (what they
build is hashed as the corpus), so the store's model is kept."""

from __future__ import annotations

import shutil
from pathlib import Path

from train_export.recipe import CODE_DIR, UNHASHED_CODE, code_sha256


def test_only_code_outside_the_default_corpus_changes_the_recipe(tmp_path: Path) -> None:
    code = shutil.copytree(CODE_DIR, tmp_path / "train_export", ignore=shutil.ignore_patterns("__pycache__", "*.txt", "*.tsv"))
    original = code_sha256(code)
    assert original == code_sha256(CODE_DIR)  # names relative to the folder: the same code anywhere
    for edited in ("default_corpus/heldout.py", "default_corpus/text_filter.py"):
        with (code / edited).open("a") as f:
            f.write("\n# an edit that builds the same corpus\n")
        assert code_sha256(code) == original, edited
    for edited in ("finetune.py", "quantize.py", "data.py"):
        before = code_sha256(code)
        with (code / edited).open("a") as f:
            f.write("\n# an edit to what shapes the model\n")
        assert code_sha256(code) != before, edited
    assert all((CODE_DIR / folder).is_dir() for folder in UNHASHED_CODE)
