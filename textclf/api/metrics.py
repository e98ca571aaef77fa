"""The service's own Prometheus metrics, served on /metrics beside BentoML's."""

from __future__ import annotations

import bentoml

# Texts per model run of the in-process batcher: 1 when requests come one at a time, more as they
# queue behind a run under load.
BATCH_TEXTS = bentoml.metrics.Histogram(
    name="textclf_batch_texts",
    documentation="Texts in one model run of the in-process batcher",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
