"""The workarounds of BentoML internals (textclf/bentoml_compat/) hold for the installed BentoML:
it is the version they were checked against, and each patch takes hold once applied. A BentoML
upgrade fails here first: re-check each workaround against the new version (the module's table says
what each one is for and where its behaviour is tested), then move CHECKED_AGAINST."""

from importlib.metadata import version

from textclf import bentoml_compat


def test_bentoml_is_the_version_the_workarounds_were_checked_against() -> None:
    assert version("bentoml") == bentoml_compat.CHECKED_AGAINST


def test_every_patch_takes_hold() -> None:
    bentoml_compat.apply()
    bentoml_compat.apply()  # idempotent: service.py runs at import in every worker
    assert bentoml_compat.patches_in_effect() == {"batch_dispatch": True, "client_error_logs": True}
