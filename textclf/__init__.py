"""Runtime of the text-classification service, in layers (as text-embeddings-inference splits its
router, core and backends): `api` (HTTP), `core` (tokenization, batching, the classifier, loading),
`backends` (one module per way to run a model), and `bentoml_compat` (every workaround of BentoML
internals). Nothing here imports torch or transformers at module level, so the CPU image can do
without them."""
