"""ONNX export (tools/export_onnx.py): every backbone, with and without inline SF-Heads, computes in
onnxruntime what the PyTorch model computes in evaluation mode, at other batch sizes and frame
counts than it was traced with."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from model import build_model
from tests.test_predict import write_checkpoint
from tools import export_onnx

# requirements-optional.txt
onnx = pytest.importorskip('onnx')
onnxruntime = pytest.importorskip('onnxruntime')

TINY = {'num_class': 7, 'channels': [8, 16], 'strides': [1, 2]}


def batch_norms_drawn(model, model_args, seed):
    """A state dict of that model whose BatchNorms have random statistics and affine maps, so that
    the BN folding of evaluation mode changes the numbers."""
    torch.manual_seed(seed)
    net = build_model(model, **model_args)
    for bn in net.modules():
        if isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 2.0)
            bn.bias.data.normal_(0, 0.3)
    return net.state_dict()


def pytorch_and_onnx(weights, onnx_path, inputs):
    """Logits of the checkpoint's PyTorch model in evaluation mode, and of the ONNX file."""
    checkpoint = torch.load(weights, weights_only=True)
    model = build_model(checkpoint['meta']['model'], **checkpoint['meta']['model_args']).eval()
    model.load_state_dict(checkpoint['model'])
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    return expected, session.run(['logits'], {'skeletons': inputs})[0]


@pytest.mark.slow
@pytest.mark.parametrize('sf_head', [None, {'groups': 2}], ids=['plain', 'sf_head'])
@pytest.mark.parametrize('model', ['ctrgcn', 'stgcn', 'tcagcn'])
def test_export_equals_pytorch_at_other_batch_sizes_and_frame_counts(
    model, sf_head, tmp_path, demo_root, capsys
):
    model_args = {**TINY, 'sf_head': sf_head}
    weights = write_checkpoint(
        tmp_path / 'w.pt', demo_root, model=model, model_args=model_args,
        test_feeder_args={'window_size': 24},
        state=batch_norms_drawn(model, model_args, seed=3),
    )
    out = tmp_path / 'model.onnx'
    assert export_onnx.main(['--weights', weights, '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'the first test sample of' in printed and f'wrote {out} (opset 17)' in printed
    assert [o.version for o in onnx.load(str(out)).opset_import if o.domain == ''] == [17]
    rng = np.random.default_rng(4)
    # traced on one sample of 24 frames; run on 3 of 40 and 2 of 9
    for shape in ((3, 3, 40, 25, 2), (2, 3, 9, 25, 2)):
        inputs = rng.normal(size=shape).astype(np.float32)
        expected, got = pytorch_and_onnx(weights, out, inputs)
        assert got.shape == (shape[0], 7)
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.slow  # a model exported and run in onnxruntime
def test_refusals_write_nothing(tmp_path, demo_root, capsys, monkeypatch):
    weights = write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'), model_args=TINY,
                               layout='ntu25', test_feeder_args={'window_size': 8})
    out = tmp_path / 'model.onnx'
    assert export_onnx.main(['--weights', weights, '--out', str(out), '--opset', '12']) == 2
    assert capsys.readouterr().err == 'error: --opset must be at least 17, got 12\n'
    # No data here: the bundled NTU sample is used; a tolerance nothing meets refuses the file.
    monkeypatch.setattr(export_onnx, 'TOLERANCE', -1.0)
    assert export_onnx.main(['--weights', weights, '--out', str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: onnxruntime vs PyTorch on ')
    assert 'S001C001P001R001A005.skeleton: largest difference' in err
    assert err.endswith(f'above the tolerance of -1; {out} not written\n')
    assert not out.exists()


def test_an_output_that_would_destroy_a_file_is_refused_before_any_work(tmp_path, capsys):
    weights = write_checkpoint(tmp_path / 'best.pt', str(tmp_path / 'gone'), model_args=TINY)
    checkpoint = (tmp_path / 'best.pt').read_bytes()
    cases = [
        (weights, f'error: --out {weights}: the output must be a .onnx file'),
        (str(tmp_path), f'error: --out {tmp_path} is a folder; name a .onnx file'),
        (str(tmp_path / 'no' / 'm.onnx'),
         f'error: --out {tmp_path / "no" / "m.onnx"}: the folder {tmp_path / "no"} does not exist'),
    ]
    for out, message in cases:
        assert export_onnx.main(['--weights', weights, '--out', out]) == 2
        assert capsys.readouterr().err == message + '\n'
    assert (tmp_path / 'best.pt').read_bytes() == checkpoint
    assert os.listdir(tmp_path) == ['best.pt']


def test_a_sample_of_the_other_kind_is_refused(tmp_path, capsys):
    weights = write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'), model_args=TINY)
    sample = tmp_path / 'two.npy'
    np.save(sample, np.ones((9, 25, 2), np.float32))
    out = tmp_path / 'm.onnx'
    assert export_onnx.main(['--weights', weights, '--out', str(out), '--sample', str(sample)]) == 2
    assert capsys.readouterr().err == (
        f'error: {sample} holds 2D keypoints (x, y, score); {weights} was trained on 3D joints '
        f'(x, y, z) (its feeder: skeleton)\n'
    )
    assert not out.exists()


@pytest.mark.slow
def test_a_2d_checkpoint_without_its_data_is_checked_on_the_bundled_coco_sample(tmp_path, capsys):
    weights = write_checkpoint(
        tmp_path / 'w.pt', str(tmp_path / 'gone'), feeder='pose2d', layout='coco17',
        model_args={**TINY, 'num_point': 17, 'num_person': 1, 'graph': 'coco17'},
    )
    out = tmp_path / 'pose.onnx'
    assert export_onnx.main(['--weights', weights, '--out', str(out)]) == 0
    assert 'custom/wave_01.json: largest difference' in capsys.readouterr().out
    inputs = np.random.default_rng(6).normal(size=(2, 3, 30, 17, 1)).astype(np.float32)
    expected, got = pytorch_and_onnx(weights, out, inputs)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
