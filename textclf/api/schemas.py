"""HTTP request and response schemas: the one place where requests are validated.

Limits come from the serving settings at import time so that the OpenAPI page shows them.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

from textclf.config import settings

_limits = settings()


def _not_blank(text: str) -> str:
    # Invisible format characters (zero-width space, BOM) and control characters (NUL, ESC, DEL: the
    # tokenizer drops them, leaving nothing to classify) count as blank too.
    if all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise ValueError("text is empty or only whitespace")
    return text


Text = Annotated[
    str,
    StringConstraints(max_length=_limits.max_text_chars),
    AfterValidator(_not_blank),
    Field(
        description=f"Text to classify: not blank, at most {_limits.max_text_chars} characters.",
        json_schema_extra={"minLength": 1},  # documents the part of "not blank" JSON Schema can say
    ),
]


class PredictRequest(BaseModel):
    """Either one `text` or a batch of `texts`; `top_k` asks for the k best labels."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "example": {"texts": ["Bonjour tout le monde", "Guten Morgen"], "top_k": 2},
            # Documents "exactly one of text/texts" (a null counts as absent) in the OpenAPI page.
            "oneOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}},
                {"required": ["texts"], "properties": {"texts": {"type": "array"}}},
            ],
        },
    )

    text: Text | None = None
    texts: Annotated[list[Text], Field(min_length=1, max_length=_limits.max_batch_texts)] | None = None
    top_k: Annotated[int, Field(ge=1, description="Return the k best labels (at most the label count).")] = 1

    @model_validator(mode="after")
    def _exactly_one_input(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self


class LabelScore(BaseModel):
    label: str
    score: float


class Prediction(BaseModel):
    label: str
    score: float = Field(description="Softmax probability of the label.")
    truncated: bool = Field(description="True when the text was cut to the model's max sequence length.")
    top_k: list[LabelScore] | None = Field(None, description="The k best labels, when top_k > 1 was asked.")


def _one_of(schema: dict[str, Any]) -> None:
    # "oneOf" documents both shapes; BentoML's OpenAPI writer mangles an "anyOf" of references.
    schema["oneOf"] = schema.pop("anyOf")


class PredictResponse(RootModel[Prediction | list[Prediction]]):
    """One prediction for `text`, a list in input order for `texts`."""

    model_config = ConfigDict(json_schema_extra=_one_of)


class TextScores(BaseModel):
    """What a model returns per text: probabilities in label order, and whether it was truncated."""

    scores: list[float]
    truncated: bool
