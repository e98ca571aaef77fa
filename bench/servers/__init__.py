"""The servers under test: our BentoML service and the two FastAPI baselines, and how to run them."""
