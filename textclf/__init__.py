"""Runtime of the text-classification service: settings, schemas, tokenization and backends.

Nothing here imports torch or transformers at module level, so the CPU image can do without them.
"""
