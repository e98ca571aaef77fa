from collections import Counter
from pathlib import Path

import pytest

from train_export.data import Example, label_list, read_examples, split


def test_reads_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "hola", "label": "es"}\n\n{"text": "hi, there", "label": "en"}\n', encoding="utf-8")
    csv = tmp_path / "d.csv"
    csv.write_text('text,label\nhola,es\n"hi, there",en\n', encoding="utf-8")
    expected = [Example(text="hola", label="es"), Example(text="hi, there", label="en")]
    assert read_examples(jsonl) == expected
    assert read_examples(csv) == expected


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"\n', "bad.jsonl:2"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "", "label": "x"}\n', "bad.jsonl:2"),
        ("bad.csv", "text,label\nok,x\nmissing\n", "bad.csv:3"),
    ],
)
def test_a_bad_row_names_its_line(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=where):
        read_examples(path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no examples"):
        read_examples(tmp_path / "e.jsonl")


def test_split_holds_out_every_label_in_proportion() -> None:
    examples = [Example(text=f"{label} {i}", label=label) for label, n in (("a", 100), ("b", 20), ("c", 5)) for i in range(n)]
    train, validation = split(examples, 0.2, seed=1)
    assert Counter(e.label for e in validation) == {"a": 20, "b": 4, "c": 1}
    assert not {e.text for e in train} & {e.text for e in validation}
    assert len(train) + len(validation) == len(examples)
    assert split(examples, 0.2, seed=1) == (train, validation)
    assert label_list(examples) == ["a", "b", "c"]
