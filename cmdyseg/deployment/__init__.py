# Copyright (c) cmdyseg contributors. All rights reserved.
"""Deployment: export a segmentor to ONNX (:mod:`.onnx_wrapper`, used by
``tools/deployment/export_onnx.py``) and run it with onnxruntime
(:mod:`.onnx_runtime`). onnx / onnxruntime / onnxscript are optional
(``requirements/deploy.txt``): importing this package does not need them.
"""
from .onnx_runtime import (ONNXRUNTIME, OnnxSegmentor, WordVectorLookup,
                           load_sidecar, onnx_segment_frames, sidecar_path)
from .onnx_wrapper import (EXPORT_BACKEND, ExportError, OnnxExportWrapper,
                           WordVectorGRU, check_exportable,
                           check_with_onnxruntime, export_onnx,
                           export_segmentor, onnx_cmdyconv)

__all__ = [
    'EXPORT_BACKEND', 'ExportError', 'ONNXRUNTIME', 'OnnxExportWrapper',
    'OnnxSegmentor', 'WordVectorGRU', 'WordVectorLookup', 'check_exportable',
    'check_with_onnxruntime', 'export_onnx', 'export_segmentor',
    'load_sidecar', 'onnx_cmdyconv', 'onnx_segment_frames', 'sidecar_path'
]
