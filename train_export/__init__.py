"""Fine-tune, export and quantize a Hugging Face text classifier into the BentoML model store."""
