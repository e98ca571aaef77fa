"""The core: tokenization, the classifier (forward passes cut by token count), the in-process batcher,
loading a model from the store and its model card."""
