from pathlib import Path

import pytest
from pydantic import ValidationError

from textclf.bentoml_compat.service_config import untraced
from textclf.config import DEFAULT_CONFIG, load_settings


def test_shipped_config_loads_and_names_both_models() -> None:
    settings = load_settings(DEFAULT_CONFIG, environ={})
    assert settings.onnx_model_tag == f"{settings.model_name}-onnx:latest"
    assert settings.torch_model_tag == f"{settings.model_name}-torch:latest"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "serving.yaml"
    config.write_text("model_name: from-file\nmax_batch_texts: 5\n")
    settings = load_settings(config, environ={"TEXTCLF_MODEL_NAME": "from-env", "TEXTCLF_MAX_TEXT_CHARS": "77"})
    assert (settings.model_name, settings.max_text_chars, settings.max_batch_texts) == ("from-env", 77, 5)


@pytest.mark.parametrize(
    ("environ", "field"),
    [({"TEXTCLF_MAX_BATCH_TEXTS": "0"}, "max_batch_texts"), ({"TEXTCLF_DEVICE": "tpu"}, "device"), ({"TEXTCLF_MODEL_NAME": "Bad Name"}, "model_name")],
)
def test_bad_values_fail_naming_the_field(environ: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        load_settings(DEFAULT_CONFIG, environ=environ)


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    config = tmp_path / "serving.yaml"
    config.write_text("max_batch_sise: 3\n")
    with pytest.raises(ValidationError, match="max_batch_sise"):
        load_settings(config, environ={})


def test_every_api_route_is_untraced_unless_tracing_is_asked_for() -> None:
    """A route added to a service without adding it to its `untraced(...)` call fails here."""
    from opentelemetry.util.http import ExcludeList

    import service

    for svc in (service.TextClassifier, service.TextClassifierGPU, service.TorchRunner, service.TextClassifierOnnxGPU, service.OnnxGpuRunner):
        excluded = ExcludeList(svc.config["tracing"]["excluded_urls"])
        for api in svc.apis.values():
            assert excluded.url_disabled(f"http://127.0.0.1:3000{api.route}"), (svc.name, api.route)
            assert excluded.url_disabled(f"http://127.0.0.1:3000{api.route}?debug=1"), (svc.name, api.route)
        assert not excluded.url_disabled("http://127.0.0.1:3000/predict_v2"), svc.name
    asked = load_settings(DEFAULT_CONFIG, environ={"TEXTCLF_TRACE_REQUESTS": "true"})
    assert untraced(asked, "/predict") == {}
