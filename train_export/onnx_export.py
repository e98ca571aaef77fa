"""Steps 4 and 6: ONNX export and graph optimization (optimum), for the CPU and for the GPU.

Each step reads and writes files, returns the file it made, and can be run on its own.
"""

from __future__ import annotations

from pathlib import Path

from optimum.exporters.onnx import main_export
from optimum.onnxruntime import ORTOptimizer
from optimum.onnxruntime.configuration import OptimizationConfig

from train_export.config import ExportConfig


def export_onnx(model_dir: Path, out_dir: Path, config: ExportConfig) -> Path:
    """fp32 ONNX graph of a saved sequence classifier; optimum checks its outputs against torch."""
    main_export(
        str(model_dir),
        output=out_dir,
        task="text-classification",
        opset=config.opset,
        library_name="transformers",
        local_files_only=True,
        do_validation=True,
    )
    return out_dir / "model.onnx"


def optimize_onnx(onnx_file: Path, config: ExportConfig) -> Path:
    """onnxruntime's transformer fusions (attention, GELU, layer norm), done once at export instead of
    at every service start, and before quantization so that the fused ops are quantized too."""
    if config.optimization_level == 0:
        return onnx_file
    optimizer = ORTOptimizer.from_pretrained(onnx_file.parent, file_names=[onnx_file.name])
    optimizer.optimize(
        OptimizationConfig(optimization_level=config.optimization_level, optimize_for_gpu=False),
        save_dir=onnx_file.parent,
        file_suffix="optimized",
    )
    return onnx_file.with_name(f"{onnx_file.stem}_optimized.onnx")


def optimize_for_gpu(onnx_file: Path, out_dir: Path, fp16: bool) -> Path:
    """onnxruntime's transformer fusions for the CUDA provider and, with `fp16`, its float16
    conversion of the optimized graph (`convert_float_to_float16(keep_io_types=True)`: the inputs
    stay int64 token ids, the logits float32), for the onnxruntime-gpu runner."""
    out_dir.mkdir(parents=True, exist_ok=True)
    optimizer = ORTOptimizer.from_pretrained(onnx_file.parent, file_names=[onnx_file.name])
    suffix = "gpu_fp16" if fp16 else "gpu_fp32"
    optimizer.optimize(OptimizationConfig(optimization_level=2, optimize_for_gpu=True, fp16=fp16), save_dir=out_dir, file_suffix=suffix)
    return out_dir / f"{onnx_file.stem}_{suffix}.onnx"
