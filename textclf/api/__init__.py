"""The HTTP layer: request and response schemas, the error -> status table, the body limit, /predict."""
