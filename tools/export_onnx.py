"""Export a trained checkpoint to ONNX, checked against PyTorch in onnxruntime:

    python -m tools.export_onnx --weights work_dir/demo/joint/best.pt --out demo.onnx

The graph takes `skeletons` (batch, C, frames, V, M), batch size and frame count free, preprocessed
as the run's test feeder does (predict.py Predictor.model_inputs gives such arrays), and returns
`logits` (batch, num_class). Before the file is written (atomically), onnxruntime runs it on a real
sample: the one given with --sample, else the run's first test sample when its data file is here,
else a bundled sample file of the checkpoint's layout; the largest difference from the PyTorch
model in evaluation mode must be at most 1e-4 of the largest logit, or nothing is written (exit 2).
Needs the onnx and onnxruntime packages (requirements-optional.txt).
"""

import argparse
import io
import math
import os
import sys
import warnings

import numpy as np
import torch

from feeders import run_split
from predict import Predictor
from torchlight.files import atomic_write, check_output_file
from torchlight.registry import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A real sequence per layout, for checking an export when the run's data is not here.
SAMPLE_FILES = {
    'ntu25': os.path.join(ROOT, 'tests', 'fixtures', 'ntu', 'S001C001P001R001A005.skeleton'),
    'ucla20': os.path.join(ROOT, 'tests', 'fixtures', 'nwucla', 'a01_s01_e00_v01.json'),
    'coco17': os.path.join(ROOT, 'tests', 'fixtures', 'custom', 'wave_01.json'),
}
TOLERANCE = 1e-4  # of the largest logit
MIN_OPSET = 17


def export_bytes(model, example, opset):
    """The ONNX file of `model` (in evaluation mode) traced on `example` (1, C, T, V, M), with
    free batch size and frame count."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is deprecated, and the tracer that Python values
        # taken from shapes are fixed; the comparison in onnxruntime is what vouches for the graph.
        warnings.simplefilter('ignore')
        # dynamo=False: the TorchScript exporter needs the onnx package only (the torch.export one
        # needs onnxscript as well).
        torch.onnx.export(
            model, (torch.from_numpy(example),), buffer, dynamo=False, opset_version=opset,
            input_names=['skeletons'], output_names=['logits'],
            dynamic_axes={'skeletons': {0: 'batch', 2: 'frames'}, 'logits': {0: 'batch'}},
        )
    return buffer.getvalue()


def check_sample(predictor, sample_file):
    """(model input (1, C, T, V, M), what it is) to check the export on."""
    if sample_file:
        return file_inputs(predictor, sample_file), sample_file
    data_path = predictor.data_path
    if data_path and os.path.exists(data_path):
        config = {**predictor.config, 'test_feeder_args': {**predictor.config['test_feeder_args'],
                                                           'data_path': data_path}}
        test_set = run_split(config)
        return test_set[0][0][None], f'{test_set.names[0]}, the first test sample of {data_path}'
    bundled = SAMPLE_FILES.get(predictor.layout.name)
    if bundled is None:
        raise ConfigError(
            f'no sample to check the export on: the run\'s data ({data_path}) is not here and no '
            f'sample file of the {predictor.layout.name} layout is bundled; give one with --sample'
        )
    return file_inputs(predictor, bundled), bundled


def file_inputs(predictor, path):
    """The model input (1, C, T, V, M) of the sequence file `path` (refused, as predict refuses
    it, when it does not fit the checkpoint)."""
    return predictor.model_inputs(predictor.read(path).frames, path)[:1]


def onnx_session(onnx_bytes):
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            'checking the export needs onnxruntime: python -m pip install -r '
            'requirements-optional.txt'
        ) from None
    return onnxruntime.InferenceSession(onnx_bytes, providers=['CPUExecutionProvider'])


def largest_difference(session, model, inputs):
    """(largest |ONNX − PyTorch| logit difference, largest |PyTorch logit|) on `inputs`."""
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    got = session.run(['logits'], {'skeletons': inputs})[0]
    if got.shape != expected.shape:
        return math.inf, float(np.abs(expected).max())
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())


def export(weights, out, *, sample_file=None, opset=MIN_OPSET):
    """Export, check on a real sample, then write `out`; returns the lines to print."""
    if opset < MIN_OPSET:
        raise ConfigError(f'--opset must be at least {MIN_OPSET}, got {opset}')
    # before any work: --out must not destroy a checkpoint or the sample
    check_output_file(out, '--out', ('.onnx',), inputs=[p for p in (weights, sample_file) if p])
    predictor = Predictor(weights)
    model_args = predictor.meta['model_args']
    inputs, source = check_sample(predictor, sample_file)
    onnx_bytes = export_bytes(predictor.model, inputs, opset)
    difference, largest = largest_difference(onnx_session(onnx_bytes), predictor.model, inputs)
    relative = difference / largest if largest else difference
    report = (f'onnxruntime vs PyTorch on {source}: largest difference {difference:.3g} '
              f'({relative:.3g} of the largest logit, {largest:.4g})')
    if not difference <= TOLERANCE * largest:
        raise ConfigError(f'{report}: above the tolerance of {TOLERANCE:g}; {out} not written')
    try:
        atomic_write(out, onnx_bytes)
    except OSError as err:
        raise ConfigError(f'--out {out}: cannot write it ({err.strerror})') from None
    shape = (f"(batch, {model_args['in_channels']}, frames, {model_args['num_point']}, "
             f"{model_args['num_person']})")
    return [report, f"wrote {out} (opset {opset}): skeletons {shape} → logits "
                    f"(batch, {model_args['num_class']})"]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--weights', required=True, help='a run\'s checkpoint (best.pt, last.pt)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--sample', metavar='FILE',
                        help='a sequence file to check the export on (any input predict reads)')
    parser.add_argument('--opset', type=int, default=MIN_OPSET,
                        help='ONNX opset (default and least: %(default)s)')
    args = parser.parse_args(argv)
    try:
        lines = export(args.weights, args.out, sample_file=args.sample, opset=args.opset)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
