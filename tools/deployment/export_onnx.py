# Copyright (c) cmdyseg contributors. All rights reserved.
"""Export a cmdyseg segmentor to ONNX.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx \
        [--clip-len N] [--shape H W] [--num-words L] [--opset 19] \
        [--exporter dynamo|torchscript] [--check] [--cfg-options k=v ...]

The graph (``cmdyseg.deployment.OnnxExportWrapper``) takes ``clip``
(B, 3, T, H, W) uint8 RGB frames at the input size (normalised inside the
graph), ``word_vectors`` (S, L, D) float32 and ``lengths`` (S,) int64, and
returns ``response`` (B, S, h, w), the head's logits for every (clip,
sentence) pair, and ``mask`` (B, S, h, w) uint8, the ``test_cfg`` rule
(half of the maximum) at that resolution. B and S are dynamic. T and
(H, W) default to the config's test pipeline, L to the text encoder's
``max_words``. The tokenizer, the word-vector lookup and the resize to the
frame size stay outside: ``cmdyseg.deployment.OnnxSegmentor`` does them as
the PyTorch model does.

Beside OUT.onnx, OUT.onnx.json (the sidecar) records the inputs' names,
shapes and dtypes, the normalisation, clip length, input size, the word
vectors (source, dims, max_words), ``test_cfg``, the test pipeline and the
model's sha256. Both files are written atomically.

``--check`` runs the graph in onnxruntime on random inputs before writing
anything and prints the max abs difference of the response maps from
PyTorch's and the mask agreement; a difference above ``--check-atol``
(1e-3) fails and writes nothing.

Bad input (a missing config or checkpoint, a model part that cannot be
exported -- an mmcv compiled op, a text encoder that does not take word
vectors --, a missing onnx / onnxscript / onnxruntime) ends with one line
``export_onnx.py: error: ...`` and status 1; ``--debug`` (or
``CMDYSEG_DEBUG=1``) shows the traceback instead.
"""
import argparse
import os.path as osp
import time

# importing cmdyseg applies its compatibility fixes before any loading
from cmdyseg.utils.checkpoint import check_checkpoint
from cmdyseg.utils.cli import DEBUG_HELP, load_config, run_cli
from cmdyseg.utils.config_check import apply_cfg_options
from cmdyseg.utils.errors import InvalidInputError
from cmdyseg.utils.optional import OptionalImport
from cmdyseg.utils.runtime import add_cfg_options_arg

_INSTALL = ('Install the deployment requirements: '
            '`pip install -r requirements/deploy.txt`')
ONNX = OptionalImport('onnx', install=_INSTALL)
ONNXSCRIPT = OptionalImport(
    'onnxscript', install=_INSTALL + " (or use --exporter torchscript)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a cmdyseg segmentor to ONNX', epilog=DEBUG_HELP)
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file path or URL')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument(
        '--clip-len', type=int,
        help='frames per clip (default: the test pipeline\'s)')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='network input size (default: the size the test pipeline '
        'resizes frames to)')
    parser.add_argument(
        '--num-words', type=int,
        help='words per sentence L (default: the text encoder\'s max_words)')
    parser.add_argument(
        '--opset', type=int, default=19, help='ONNX opset (default 19)')
    parser.add_argument(
        '--exporter', choices=['dynamo', 'torchscript'], default='dynamo',
        help='torch.onnx exporter: dynamo (torch.export, the default of '
        'torch >= 2.9, needs onnxscript) or the legacy torchscript tracer '
        '(faster to export, deprecated by torch)')
    parser.add_argument(
        '--check', action='store_true',
        help='run the graph in onnxruntime on random inputs and compare '
        'with PyTorch before writing')
    parser.add_argument(
        '--check-atol', type=float, default=1e-3,
        help='largest response-map difference --check accepts (1e-3)')
    add_cfg_options_arg(parser, 'model.test_cfg.thr=0.4')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    apply_cfg_options(cfg, args.cfg_options, args.config)
    checkpoint = check_checkpoint(args.checkpoint)
    if not args.out.endswith('.onnx'):
        raise InvalidInputError(f'OUT must end in .onnx, got {args.out!r}')
    ONNX.require('export_onnx.py')
    if args.exporter == 'dynamo':
        ONNXSCRIPT.require('the dynamo ONNX exporter')
    if args.check:
        from cmdyseg.deployment import ONNXRUNTIME
        ONNXRUNTIME.require('--check')

    from cmdyseg.apis import init_model
    from cmdyseg.deployment import check_exportable, export_segmentor
    model = init_model(cfg, checkpoint, device='cpu')
    check_exportable(model)  # before the slow export
    start = time.perf_counter()
    meta = export_segmentor(
        model,
        args.out,
        clip_len=args.clip_len,
        img_shape=args.shape,
        num_words=args.num_words,
        opset=args.opset,
        exporter=args.exporter,
        check=args.check,
        check_atol=args.check_atol,
        source=dict(
            config=osp.abspath(args.config),
            checkpoint=osp.abspath(checkpoint)))
    seconds = time.perf_counter() - start
    ins = meta['inputs']
    print(f'wrote {args.out} and {args.out}.json ({args.exporter} exporter, '
          f'opset {args.opset}, {seconds:.1f} s): ' + ', '.join(
              f'{i["name"]} {i["shape"]}' for i in ins) + ' -> response '
          f'{meta["outputs"][0]["shape"]}', flush=True)
    if args.check:
        c = meta['check']
        print(f'onnxruntime check: max |response difference| = '
              f'{c["max_abs_diff"]:.3g} (<= {c["atol"]}), mask agreement '
              f'{100 * c["mask_agreement"]:.3f}% on random inputs '
              f'(response {c["response_shape"]}, sentence lengths '
              f'{c["lengths"]})', flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main, prog='export_onnx.py')
