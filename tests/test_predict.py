"""Prediction on new sequences (predict.py, data/inputs.py) and the feeders' transforms built
without their data (feeders/feeder.py)."""

import glob
import json
import os
import pickle

import numpy as np
import pytest
import torch

from data.inputs import read_input
from data.prepare import main as prepare_main
from data.storage import read_index, write_split
from data.synthetic import CLASS_NAMES, generate
from feeders import FEEDERS, build_feeder
from feeders.transforms import crop_resize
from main import main
from model import build_model, inference_args
from predict import Predictor, window_starts
from predict import main as predict_main
from torchlight.checkpoint import save_checkpoint
from torchlight.registry import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ------------------------------------------------------------- transforms without the data source


@pytest.fixture(scope='module')
def ucla_like_root(tmp_path_factory):
    """A one-person, 20-joint split file of random walks (the NW-UCLA layout)."""
    root = tmp_path_factory.mktemp('ucla_like')
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(t, 1, 20, 3)).cumsum(0).astype(np.float32) for t in (9, 70)]
    write_split(str(root / 'test.h5'), sequences, [0, 1], ['a', 'b'], dataset='ucla',
                layout='ucla20', num_class=10)
    return str(root)


@pytest.mark.parametrize('name, stream, args', [
    ('skeleton', 'joint', {'window_size': 20, 'p_interval': [0.9]}),
    ('demo', 'bone_motion', {'window_size': 16}),
    ('ucla', 'bone', {'window_size': 12}),
])
def test_transforms_from_args_are_the_feeders_own(name, stream, args, demo_root, ucla_like_root):
    root = ucla_like_root if name == 'ucla' else demo_root
    feeder = build_feeder(name, data_path=root, split='test', stream=stream, **args)
    transforms = FEEDERS.get(name).transforms_from_args(
        {'data_path': 'elsewhere', **args}, layout=feeder.layout, stream=stream
    )
    assert type(transforms) is type(feeder.transforms)
    assert vars(transforms) == vars(feeder.transforms)
    for index in range(2):
        data, _, _ = feeder[index]
        again = transforms(feeder.frames(index), np.random.default_rng(), {'where': 'array'})
        np.testing.assert_array_equal(again, data)


# ------------------------------------------------------------------------ checkpoints for predict


def write_checkpoint(path, data_path, *, model_args, model='ctrgcn', feeder='skeleton',
                     dataset='demo', benchmark=None, layout='ntu25', stream='joint',
                     test_feeder_args=None, state=None, seed=0):
    """A checkpoint as the trainer writes one (weights, resolved config, meta) for a model of
    `model_args` (random weights from `seed`, or `state` where it gives them)."""
    torch.manual_seed(seed)
    net = build_model(model, **model_args)
    weights = {**net.state_dict(), **(state or {})}
    config = {
        'feeder': feeder, 'stream': stream, 'benchmark': benchmark,
        'test_feeder_args': {'data_path': data_path, **(test_feeder_args or {})},
        'model': model, 'model_args': model_args,
        'ambiguous_groups': 'config/ambiguous/demo.yaml',  # from the root, as the configs say
    }
    meta = {'model': model, 'model_args': inference_args(model, model_args),
            'dataset': dataset, 'benchmark': benchmark, 'layout': layout, 'stream': stream,
            'num_class': model_args['num_class']}
    save_checkpoint({'model': weights, 'config': config, 'meta': meta}, str(path))
    return str(path)


SMALL = {'num_class': 10, 'channels': [8, 8], 'strides': [1, 2], 'sf_head': {'groups': 2}}


def constant_logits_state(probabilities):
    """Weights making the classifier ignore its input: logits = log(probabilities)."""
    return {'fc.weight': torch.zeros(10, 8), 'fc.bias': torch.log(torch.tensor(probabilities))}


def test_top_k_json_and_ambiguous_pair_of_a_model_with_known_answer(tmp_path, demo_root, capsys):
    # demo classes: 0 wave, 1 salute, 2 jump up, 3 hop, ...; wave and salute form a group
    probabilities = [0.52, 0.41, 0.02, 0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.005]
    weights = write_checkpoint(tmp_path / 'known.pt', demo_root, model_args=SMALL,
                               state=constant_logits_state(probabilities))
    sequence = tmp_path / 'walk.npy'
    np.save(sequence, np.random.default_rng(0).normal(size=(40, 25, 3)).astype(np.float32))
    out = tmp_path / 'predictions.json'
    assert predict_main(['--weights', weights, '--input', str(sequence), '--top', '3',
                         '--json', str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(sequence), '  wave     0.520', '  salute   0.410', '  jump up  0.020',
                       '  wave 0.52 / salute 0.41: an ambiguous pair (wave vs salute)']
    written = json.loads(out.read_text())
    assert [entry['input'] for entry in written] == [str(sequence)]
    top = written[0]['top']
    assert [(t['class'], t['name']) for t in top] == [(0, 'wave'), (1, 'salute'), (2, 'jump up')]
    np.testing.assert_allclose([t['prob'] for t in top], probabilities[:3], rtol=1e-6)


def test_no_note_when_the_leading_classes_are_in_no_common_group(tmp_path, demo_root):
    probabilities = [0.5, 0.05, 0.4, 0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.01]
    predictor = Predictor(write_checkpoint(tmp_path / 'k.pt', demo_root, model_args=SMALL,
                                           state=constant_logits_state(probabilities)))
    probabilities = predictor.predict(np.random.default_rng(0).normal(size=(10, 25, 3)))
    assert [t['name'] for t in predictor.top(probabilities, 3)] == ['wave', 'jump up', 'salute']
    assert predictor.ambiguity(probabilities) is None


def predict_one(tmp_path, demo_root, probabilities, *options):
    """(exit code, stdout lines) of predict.py with a model that gives `probabilities`."""
    weights = write_checkpoint(tmp_path / 'known.pt', demo_root, model_args=SMALL,
                               state=constant_logits_state(probabilities))
    sequence = tmp_path / 'walk.npy'
    np.save(sequence, np.random.default_rng(0).normal(size=(40, 25, 3)).astype(np.float32))
    return predict_main(['--weights', weights, '--input', str(sequence), *options])


def test_no_ambiguity_note_when_the_model_is_certain(tmp_path, demo_root, capsys):
    # wave and salute lead, but salute at 0.001 is no contest (the old note said 1.00 / 0.00)
    probabilities = [0.995, 0.001, 0.001, 0.001, 0.001, 0.001, 0.0, 0.0, 0.0, 0.0]
    assert predict_one(tmp_path, demo_root, probabilities, '--top', '2') == 0
    assert capsys.readouterr().out.splitlines()[1:] == ['  wave    0.995', '  salute  0.001']


def test_ambiguity_note_with_top_1_when_the_second_class_is_close(tmp_path, demo_root, capsys):
    probabilities = [0.470, 0.468, 0.01, 0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.002]
    assert predict_one(tmp_path, demo_root, probabilities, '--top', '1') == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        '  wave  0.470', '  wave 0.47 / salute 0.47: an ambiguous pair (wave vs salute)']


def test_ambiguity_needs_the_second_class_at_a_quarter_of_the_first(tmp_path, demo_root):
    predictor = Predictor(write_checkpoint(tmp_path / 'k.pt', demo_root, model_args=SMALL))
    rest = [0.0025] * 8
    assert predictor.ambiguity(np.array([0.78, 0.2, *rest])) == (
        'wave 0.78 / salute 0.20: an ambiguous pair (wave vs salute)')
    assert predictor.ambiguity(np.array([0.8, 0.18, *rest])) is None


def test_window_starts_by_hand():
    assert window_starts(300, 300, 150) == [0]
    assert window_starts(301, 300, 150) == [0, 1]
    assert window_starts(450, 300, 150) == [0, 150]
    assert window_starts(500, 300, 150) == [0, 150, 200]


def test_long_sequence_averages_window_probabilities_as_an_explicit_loop(tmp_path, demo_root):
    weights = write_checkpoint(tmp_path / 'w.pt', demo_root, model_args=SMALL,
                               test_feeder_args={'window_size': 12, 'p_interval': [0.9]})
    predictor = Predictor(weights, span=20, stride=10)
    frames = np.random.default_rng(1).normal(size=(50, 1, 25, 3)).astype(np.float32)
    model = build_model('ctrgcn', **SMALL)
    model.load_state_dict(torch.load(weights, weights_only=True)['model'])
    model.eval()
    expected = []
    for start in (0, 10, 20, 30):  # windows of 20 frames every 10, the last ending at frame 50
        # the demo data is centred: each window on the spine middle of its first frame
        window = frames[start : start + 20] - frames[start, 0, 1]
        window = np.concatenate([window, np.zeros((20, 1, 25, 3))], axis=1)
        # centre crop: b = int(0.1 · 20 / 2) = 1, frames 1..18, resized to 12
        data = crop_resize(window.transpose(3, 0, 2, 1), 20, [0.9], 12)
        with torch.no_grad():
            logits = model(torch.from_numpy(data[None].astype(np.float32)))
        expected.append(torch.softmax(logits.double(), 1)[0].numpy())
    np.testing.assert_allclose(predictor.predict(frames), np.mean(expected, axis=0), atol=1e-6)


def test_windows_without_a_skeleton_are_left_out(tmp_path, demo_root):
    predictor = Predictor(write_checkpoint(tmp_path / 'w.pt', demo_root, model_args=SMALL),
                          span=20, stride=20)
    frames = np.random.default_rng(2).normal(size=(40, 25, 3)).astype(np.float32)
    padded = np.concatenate([frames[:20], np.zeros((20, 25, 3), np.float32)])
    assert predictor.window_logits(padded).shape == (1, 10)
    np.testing.assert_allclose(predictor.predict(padded), predictor.predict(frames[:20]))


def test_relative_run_paths_are_found_from_elsewhere(tmp_path, demo_root, monkeypatch):
    weights = write_checkpoint(tmp_path / 'w.pt', os.path.relpath(demo_root, ROOT),
                               model_args=SMALL)
    monkeypatch.chdir(tmp_path)
    predictor = Predictor(weights)
    assert predictor.notes == []
    assert predictor.class_names[:2] == ['wave', 'salute']
    assert predictor.groups['wave vs salute'] == [0, 1]


def test_a_layout_file_of_the_run_is_found_from_elsewhere(tmp_path, monkeypatch):
    rig = 'layouts/openpose18.yaml'                      # relative to the repository root
    weights = write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'), layout=rig,
                               model_args={**SMALL, 'graph': rig, 'num_point': 18})
    monkeypatch.chdir(tmp_path)
    predictor = Predictor(weights)
    assert predictor.layout.num_joints == 18 and predictor.layout.joints[1] == 'neck'
    probabilities = predictor.predict(np.ones((20, 18, 3), np.float32))
    assert probabilities.shape == (10,) and abs(probabilities.sum() - 1) < 1e-9


def test_class_numbers_and_a_note_without_the_run_data(tmp_path):
    predictor = Predictor(write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'),
                                           model_args=SMALL))
    assert predictor.class_names[:2] == ['class 0', 'class 1']
    assert 'gone' in predictor.notes[0] and 'by number' in predictor.notes[0]


def test_class_names_the_checkpoint_records_need_no_run_data(tmp_path):
    weights = write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'), model_args=SMALL)
    checkpoint = torch.load(weights, weights_only=True)
    names = list(CLASS_NAMES)
    checkpoint['meta']['class_names'] = names
    save_checkpoint(checkpoint, weights)
    predictor = Predictor(weights)
    assert predictor.class_names == names and predictor.notes == []
    assert predictor.groups['wave vs salute'] == [0, 1]


def test_scores_past_the_datas_classes_are_named_by_number(tmp_path):
    # a 12-way classifier trained on the 10 demo classes (FR-Head trains NTU-60 with 120 outputs)
    weights = write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'),
                               model_args={**SMALL, 'num_class': 12})
    checkpoint = torch.load(weights, weights_only=True)
    checkpoint['meta'].update(num_class=10, class_names=list(CLASS_NAMES))
    save_checkpoint(checkpoint, weights)
    predictor = Predictor(weights)
    assert predictor.class_names == [*CLASS_NAMES, 'class 10', 'class 11']
    probabilities = np.full(12, 0.05)
    probabilities[11] = 0.45
    assert [t['name'] for t in predictor.top(probabilities, 2)] == ['class 11', CLASS_NAMES[0]]


# ---------------------------------------------------------------------------------- refusals


def test_refusals_name_the_input_and_the_checkpoint(tmp_path, demo_root, capsys):
    weights = write_checkpoint(tmp_path / 'w.pt', demo_root, model_args=SMALL)
    coco = tmp_path / 'coco.npy'
    np.save(coco, np.ones((30, 17, 3), np.float32))
    plain = tmp_path / 'plain.pt'
    torch.save(build_model('ctrgcn', **SMALL).state_dict(), plain)
    text = tmp_path / 'seq.txt'
    text.write_text('1 2 3\n')
    renamed = tmp_path / 'text.npy'
    renamed.write_text('1 2 3\n')
    out = tmp_path / 'out.json'
    cases = [
        (['--weights', weights, '--input', str(coco)],
         f'error: {coco} has shape (30, 1, 17, 3) (frames, persons, joints, channels); {weights} '
         f'takes 25 joints (ntu25 layout) of 3 channels: (T >= 1, M, 25, 3)'),
        (['--weights', str(plain), '--input', str(coco)],
         f'error: {plain} holds weights without the run configuration that predict needs'),
        (['--weights', weights, '--input', str(text)],
         f'error: {text}: not an input file predict reads'),
        (['--weights', weights, '--input', str(tmp_path / 'none.npy')],
         f'error: input not found: {tmp_path / "none.npy"}'),
        (['--weights', weights, '--input', str(tmp_path)],
         f'error: input {tmp_path} is a folder; give the sequence files in it'),
        (['--weights', weights, '--input', str(renamed)],
         f'error: {renamed}: not a NumPy array file (it lacks the header that numpy.save '
         f'writes)'),
        (['--weights', weights, '--input', str(coco), '--top', '0'],
         'error: --top must be at least 1, got 0'),
        (['--weights', weights, '--input', str(coco), '--span', '0'],
         'error: --span must be a whole number of frames >= 1, got 0'),
        (['--weights', weights, '--input', str(coco), '--stride', '-2'],
         'error: --stride must be a whole number of frames >= 1, got -2'),
        (['--weights', weights, '--input', str(coco), '--image-size', '480', '640'],
         f'error: an image size is for 2D keypoints; {weights} was trained with the skeleton '
         f'feeder, which does not scale by the image'),
    ]
    for argv, message in cases:
        assert predict_main([*argv, '--json', str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count('\n') == 1, err
    assert not out.exists()
    nowhere = tmp_path / 'no' / 'out.json'
    assert predict_main(['--weights', weights, '--input', str(coco), '--json', str(nowhere)]) == 2
    assert capsys.readouterr().err == (f'error: --json {nowhere}: the folder {nowhere.parent} '
                                       f'does not exist\n')


def test_json_output_that_would_destroy_a_file_is_refused_before_any_work(
    tmp_path, demo_root, capsys
):
    weights = write_checkpoint(tmp_path / 'best.pt', demo_root, model_args=SMALL)
    sequence = tmp_path / 'wave.json'
    sequence.write_text(json.dumps({'keypoints': np.ones((20, 25, 3)).tolist()}))
    before = {path: path.read_bytes() for path in (tmp_path / 'best.pt', sequence)}
    cases = [
        (weights, f'error: --json {weights}: the output must be a .json file'),
        (str(sequence), f'error: --json {sequence} is also an input of this command; name another '
                        f'file'),
        (str(tmp_path), f'error: --json {tmp_path} is a folder; name a .json file'),
    ]
    for out, message in cases:
        assert predict_main(['--weights', weights, '--input', str(sequence), '--json', out]) == 2
        printed = capsys.readouterr()
        assert (printed.out, printed.err) == ('', message + '\n')
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(os.listdir(tmp_path)) == ['best.pt', 'wave.json']


def test_2d_keypoints_and_3d_joints_are_refused_by_a_checkpoint_of_the_other_kind(
    tmp_path, demo_root, capsys
):
    joints3d = write_checkpoint(tmp_path / 'w.pt', demo_root, model_args=SMALL)
    keypoints2d = write_checkpoint(tmp_path / 'coco.pt', str(tmp_path / 'gone'), feeder='pose2d',
                                   layout='coco17', model_args={**SMALL, **COCO})
    two = tmp_path / 'two.npy'  # x, y: the reader adds a score as third channel
    np.save(two, np.random.default_rng(0).normal(size=(40, 25, 2)).astype(np.float32))
    scored = tmp_path / 'scored.json'
    scored.write_text(json.dumps({'keypoints': np.ones((9, 25, 2)).tolist(),
                                  'scores': np.ones((9, 25)).tolist()}))
    ntu = os.path.join(FIXTURES, 'ntu', 'S001C001P001R001A005.skeleton')
    out = tmp_path / 'out.json'
    cases = [
        (joints3d, two, f'error: {two} holds 2D keypoints (x, y, score); {joints3d} was trained on '
                        f'3D joints (x, y, z) (its feeder: skeleton)'),
        (joints3d, scored, f'error: {scored} holds 2D keypoints (x, y, score); {joints3d} was '
                           f'trained on 3D joints (x, y, z) (its feeder: skeleton)'),
        (keypoints2d, ntu, f'error: {ntu} holds 3D joints (x, y, z); {keypoints2d} was trained on '
                           f'2D keypoints (x, y, score) (its feeder: pose2d)'),
    ]
    for weights, sequence, message in cases:
        argv = ['--weights', weights, '--input', str(sequence), '--json', str(out)]
        assert predict_main(argv) == 2
        printed = capsys.readouterr()
        assert (printed.out, printed.err) == ('', message + '\n')
    assert not out.exists()
    # three channels may be x, y, z or x, y, score: a .npy cannot tell them apart
    three = tmp_path / 'three.npy'
    np.save(three, np.ones((9, 25, 3), np.float32))
    assert Predictor(joints3d).read(str(three)).channels is None


def test_a_frames_first_array_and_dropped_persons_get_notes(tmp_path, demo_root, capsys):
    weights = write_checkpoint(tmp_path / 'w.pt', demo_root, model_args=SMALL)
    rng = np.random.default_rng(3)
    frames_first = tmp_path / 'frames_first.npy'  # (T, M, V, C): read as 83 persons of 2 frames
    np.save(frames_first, rng.normal(size=(83, 2, 25, 3)).astype(np.float32))
    crowd = tmp_path / 'crowd.npy'  # (M, T, V, C): 3 persons of 40 frames
    np.save(crowd, rng.normal(size=(3, 40, 25, 3)).astype(np.float32))
    assert predict_main(['--weights', weights, '--input', str(frames_first), str(crowd)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f'note: {frames_first} is read as (M, T, V, C) = 83 persons of 2 frames; if the array is '
        f'frames first (T, M, V, C), save it as array.transpose(1, 0, 2, 3)',
        f'note: {frames_first} holds 83 persons; {weights} reads 2: the first 2 are scored, the '
        f'other 81 dropped',
        f'note: {crowd} holds 3 persons; {weights} reads 2: the first 2 are scored, the other 1 '
        f'dropped',
    ]


def test_2d_keypoints_are_scaled_by_the_longer_side_of_the_image(tmp_path, capsys):
    weights = write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'), feeder='pose2d',
                               layout='coco17', model_args={**SMALL, **COCO})
    predictor = Predictor(weights)
    rng = np.random.default_rng(5)
    # (T, V, 3): pixels in a 640-wide image, scores
    frames = np.concatenate([rng.uniform(0, 480, (20, 17, 2)), rng.uniform(0.5, 1, (20, 17, 1))],
                            axis=-1)
    doubled = frames * [2, 2, 1]
    np.testing.assert_allclose(predictor.predict(doubled, image_size=(960, 1280)),
                               predictor.predict(frames, image_size=(480, 640)), atol=1e-6)
    assert np.abs(predictor.predict(frames, image_size=(480, 1280))
                  - predictor.predict(frames, image_size=(480, 640))).max() > 1e-4
    sequence = tmp_path / 'pose.npy'
    np.save(sequence, frames)
    # the run's data is not here: whether it stored image sizes is unknown
    assert predict_main(['--weights', weights, '--input', str(sequence)]) == 0
    assert "note: 2D keypoints scaled by the skeleton's extent; if the run's data stored" in (
        capsys.readouterr().err)


def coco_split(folder, image_sizes=None):
    """A prepared test split of 2D keypoints in `folder`, with `image_sizes` (N, 2) or none."""
    frames = np.random.default_rng(0).uniform(0.5, 1, (2, 9, 1, 17, 3)).astype(np.float32)
    per_sample = None if image_sizes is None else {'image_size': np.array(image_sizes)}
    os.makedirs(folder)
    write_split(os.path.join(folder, 'test.h5'), list(frames), [0, 1], ['a', 'b'],
                per_sample=per_sample, dataset='mine', layout='coco17', num_class=10)
    return str(folder)


@pytest.mark.parametrize('feeder, image_sizes, noted', [
    ('pose2d', [[720, 1280], [720, 1280]], True),
    ('pose2d', None, False),  # trained with extent scaling
    ('pose2d', [[0, 0], [0, 0]], False),  # no sample's image size known: extent scaling
    ('demo2d', None, True),  # the 2D demo stores image sizes; its data is not even needed
])
def test_2d_scaling_note_says_what_the_run_was_trained_with(
    feeder, image_sizes, noted, tmp_path, capsys
):
    data_path = (coco_split(tmp_path / 'data', image_sizes) if feeder == 'pose2d'
                 else str(tmp_path / 'gone'))
    weights = write_checkpoint(tmp_path / 'w.pt', data_path, feeder=feeder, layout='coco17',
                               model_args={**SMALL, **COCO})
    assert predict_main(['--weights', weights, '--input', COCO_SEQUENCE]) == 0
    note = (f"note: {weights} was trained on 2D keypoints scaled by their video's image size; "
            f"without --image-size HEIGHT WIDTH they are scaled by the skeleton's extent and the "
            f'scores are unreliable')
    err = capsys.readouterr().err.splitlines()
    assert (note in err) == noted and not any('extent' in line for line in err if line != note)
    assert predict_main(['--weights', weights, '--input', COCO_SEQUENCE, '--image-size', '720',
                         '1280']) == 0
    assert 'extent' not in capsys.readouterr().err


def test_no_note_before_an_unrelated_error(tmp_path, capsys):
    weights = write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'), feeder='demo2d',
                               layout='coco17',
                               model_args={**SMALL, **COCO})
    wrong = tmp_path / 'ntu.npy'
    np.save(wrong, np.ones((9, 25, 3), np.float32))
    assert predict_main(['--weights', weights, '--input', COCO_SEQUENCE, str(wrong)]) == 2
    printed = capsys.readouterr()
    assert printed.out == '' and printed.err.count('\n') == 1
    assert printed.err.startswith(f'error: {wrong} has shape (9, 1, 25, 3)')


def test_two_dimensional_points_are_refused_by_a_three_channel_model(tmp_path, demo_root):
    predictor = Predictor(write_checkpoint(tmp_path / 'w.pt', demo_root, model_args=SMALL))
    with pytest.raises(ConfigError, match=r'has shape \(8, 2, 25, 2\) .* of 3 channels'):
        predictor.predict(np.ones((8, 2, 25, 2)))


# ------------------------------------------------------------- the test run's scores, real files


def softmax(logits):
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


FIXTURES = os.path.join(ROOT, 'tests', 'fixtures')
COCO_SEQUENCE = os.path.join(FIXTURES, 'custom', 'salute_01.npy')  # (T, V, 3): x, y, score
COCO = {'num_point': 17, 'num_person': 1, 'graph': 'coco17'}
# dataset: preparation arguments, benchmark, feeder, model arguments, stream
REAL = {
    'ntu60': (['--raw', f'{FIXTURES}/ntu'], 'xview', 'skeleton', {'num_class': 60}, 'joint'),
    'ntu120': (['--raw', f'{FIXTURES}/ntu'], 'xset', 'skeleton', {'num_class': 120}, 'bone'),
    'ucla': (['--raw', f'{FIXTURES}/nwucla'], 'xview', 'ucla',
             {'num_class': 10, 'num_point': 20, 'num_person': 1, 'graph': 'ucla20'},
             'joint_motion'),
    'custom': (['--raw', f'{FIXTURES}/custom', '--layout', 'coco17', '--persons', '1'],
               'default', 'pose2d', {'num_class': 3, **COCO}, 'bone_motion'),
}


def scores_of_a_test_run(tmp_path, data_path, *, dataset, benchmark, feeder, model_args, stream):
    """(checkpoint, {sample name: logits} that `main.py --phase test` writes for it)."""
    weights = write_checkpoint(
        tmp_path / 'w.pt', data_path, model_args=model_args, feeder=feeder, dataset=dataset,
        benchmark=benchmark, layout=model_args.get('graph', 'ntu25'), stream=stream,
    )
    config = tmp_path / 'test.yaml'
    config.write_text(json.dumps({
        'work_dir': str(tmp_path / 'run'), 'phase': 'test', 'weights': weights, 'device': 'cpu',
        'feeder': feeder, 'test_feeder_args': {'data_path': data_path}, 'benchmark': benchmark,
        'stream': stream, 'model': 'ctrgcn', 'model_args': model_args, 'num_worker': 0,
    }))
    assert main(['--config', str(config)]) == 0
    score_file, = glob.glob(str(tmp_path / 'run' / 'test_*' / '*test_score.pkl'))
    with open(score_file, 'rb') as f:
        return weights, pickle.load(f)


def assert_same_logits(predicted, tested):
    np.testing.assert_allclose(predicted, tested, rtol=1e-5, atol=1e-5 * np.abs(tested).max())


@pytest.mark.slow
@pytest.mark.parametrize('dataset', sorted(REAL))
def test_predict_on_raw_files_gives_the_test_runs_scores(dataset, tmp_path):
    prepare_args, benchmark, feeder, model_args, stream = REAL[dataset]
    out = tmp_path / dataset
    assert prepare_main([dataset, *prepare_args, '--out', str(out), '--workers', '1']) == 0
    weights, tested = scores_of_a_test_run(
        tmp_path, glob.glob(str(out / '*.h5'))[0], dataset=dataset, benchmark=benchmark,
        feeder=feeder, model_args={**SMALL, **model_args}, stream=stream,
    )
    predictor = Predictor(weights)
    for name, scores in tested.items():
        path, = glob.glob(os.path.join(prepare_args[1], name + '.*'))
        assert_same_logits(predictor.window_logits(read_input(path))[0], scores)
        np.testing.assert_allclose(predictor.predict_file(path), softmax(scores), atol=1e-6)
    assert len(tested) == {'ntu60': 2, 'ntu120': 3, 'ucla': 1, 'custom': 1}[dataset]


@pytest.mark.slow
def test_2d_keypoints_with_their_image_size_give_the_test_runs_scores(tmp_path):
    root = tmp_path / 'coco2d'
    generate(str(root), layout='coco17')  # the 2D demo, whose samples record their image size
    weights, tested = scores_of_a_test_run(
        tmp_path, str(root), dataset='demo2d', benchmark='xsub', feeder='demo2d',
        model_args={**SMALL, **COCO}, stream='joint',
    )
    test_split = read_index(str(root / 'test.h5'))
    frames_of = build_feeder('demo2d', data_path=str(root), split='test').reader
    predictor = Predictor(weights)
    for index in range(0, len(test_split['names']), 40):
        name, image_size = test_split['names'][index], test_split['image_size'][index]
        assert_same_logits(predictor.window_logits(frames_of[index], image_size=image_size)[0],
                           tested[name])
        # scaled by the extent instead, the scores are others
        extent = predictor.window_logits(frames_of[index])[0]
        assert np.abs(extent - tested[name]).max() > 1e-3 * np.abs(tested[name]).max()


def test_inputs_are_centred_as_the_runs_data_was_prepared(tmp_path):
    # Kinect coordinates, as a raw pyskl NTU record saved with numpy.save: off-centre
    raw = np.random.default_rng(3).normal(size=(30, 25, 3)).astype(np.float32) + [2.0, 0.5, 3.0]
    by_hand = raw - raw[0, 1]           # the spine middle of the first frame at the origin
    np.save(tmp_path / 'raw.npy', raw)

    def predictor(name, **attrs):
        data = tmp_path / f'{name}.h5'
        if attrs:
            write_split(str(data), [by_hand[:, None]], [0], ['s'], dataset=name, layout='ntu25',
                        num_class=10, **attrs)
        return Predictor(write_checkpoint(tmp_path / f'{name}.pt', str(data), dataset=name,
                                          model_args=SMALL))

    # data recorded as centred (NTU, pyskl's NTU 3D): the raw file scores as centred
    centred = predictor('pyskl_ntu', centred='first actor')
    np.testing.assert_allclose(centred.predict(raw), centred.predict(by_hand), rtol=1e-6)
    assert centred.read(str(tmp_path / 'raw.npy')).notes == ()
    # NTU RGB+D's own data, prepared before the record and not here: known all the same
    known = predictor('ntu60')
    np.testing.assert_allclose(known.predict(raw), known.predict(by_hand), rtol=1e-6)
    # custom 3D data, stored as given: the model reads the coordinates as they are
    as_given = predictor('mine', centred='')
    assert not np.allclose(as_given.predict(raw), as_given.predict(by_hand), rtol=1e-3)
    # data not here and a dataset of unknown preparation: said, not guessed
    unknown = predictor('gone')
    note, = unknown.read(str(tmp_path / 'raw.npy')).notes
    assert note.startswith(f"{tmp_path / 'raw.npy'} is not centred, and how the run's data was")
    np.save(tmp_path / 'centred.npy', by_hand)
    assert unknown.read(str(tmp_path / 'centred.npy')).notes == ()


def test_windows_are_centred_by_the_rule_of_the_runs_preparation(tmp_path):
    rng = np.random.default_rng(4)
    two = rng.normal(size=(40, 2, 25, 3)).astype(np.float32) + [1.0, 0.0, 3.0]
    two[:2, 0] = 0                          # actor 1 enters at frame 2, actor 2 is there from 0
    first_actor = Predictor(write_checkpoint(tmp_path / 'ntu.pt', str(tmp_path / 'gone'),
                                             dataset='ntu120', model_args=SMALL))
    present_body = Predictor(write_checkpoint(tmp_path / 'pku.pt', str(tmp_path / 'gone'),
                                              dataset='pkummd', model_args=SMALL))
    # NTU: actor 1's first frame; PKU-MMD: the first body of the first frame (actor 2's)
    np.testing.assert_allclose(first_actor.centred(two)[2, 0, 1], 0, atol=1e-6)
    np.testing.assert_allclose(present_body.centred(two)[0, 1, 1], 0, atol=1e-6)
    # a prepared PKU-MMD clip is left as it is
    prepared = present_body.centred(two)
    np.testing.assert_array_equal(present_body.centred(prepared), prepared)
    # a window of a longer input where actor 1 has left: centred on actor 2, not a traceback
    two[10:, 0] = 0
    np.testing.assert_allclose(first_actor.centred(two[20:])[0, 1, 1], 0, atol=1e-6)
    windowed = Predictor(write_checkpoint(tmp_path / 'w.pt', str(tmp_path / 'gone'),
                                          dataset='ntu120', model_args=SMALL), span=20, stride=10)
    assert len(windowed.model_inputs(two)) == 3             # frames 0-19, 10-29, 20-39
    assert abs(windowed.predict(two).sum() - 1) < 1e-9


def test_a_run_on_the_reference_npz_layout_centres_its_inputs(tmp_path):
    raw = np.random.default_rng(5).normal(size=(12, 1, 25, 3)).astype(np.float32) + 2.0
    by_hand = raw - raw[0, 0, 1]
    padded = np.zeros((1, 12, 150), np.float32)
    padded[0, :, :75] = by_hand.reshape(12, 75)
    data = tmp_path / 'NTU60_CS.npz'
    np.savez(data, x_train=padded, y_train=np.eye(10)[[0]], x_test=padded, y_test=np.eye(10)[[0]])
    predictor = Predictor(write_checkpoint(tmp_path / 'w.pt', str(data), dataset='NTU60_CS',
                                           benchmark='xsub', model_args=SMALL))
    assert predictor.centring == 'first actor'
    np.testing.assert_allclose(predictor.predict(raw), predictor.predict(by_hand), rtol=1e-6)
