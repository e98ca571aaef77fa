"""Step 3: the torch model as a standard Hugging Face folder (AutoModel/AutoTokenizer load it)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer
from transformers import PreTrainedModel, PreTrainedTokenizerFast


def save_torch_model(model: PreTrainedModel, source: PreTrainedTokenizerFast, tokenizer: Tokenizer, max_length: int, out_dir: Path) -> Path:
    """Its tokenizer.json is the one the service uses: truncation at max_length, padding to the
    longest text of a batch. Returns the folder."""
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.enable_padding(pad_id=source.pad_token_id, pad_token=source.pad_token)
    tokenizer.enable_truncation(max_length)
    model.save_pretrained(out_dir)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=max_length, **source.special_tokens_map).save_pretrained(out_dir)
    return out_dir
