"""Serving benchmark: our BentoML service against FastAPI baselines and the in-process limit (`python -m bench`)."""
