"""tools/ensemble.py on hand-built score files whose fused results are worked out by hand; safe
reading of pickles."""

import json
import os
import pickle

import numpy as np
import pytest

from tests.runs import fake_run
from tools.ensemble import main as ensemble_main
from torchlight.registry import ConfigError
from torchlight.scores import load_label_file, load_scores

NAMES = ['s0', 's1', 's2', 's3']
LABELS = np.array([0, 1, 2, 1])
# Stream A is right on s0, s1; stream B on s2, s3. With weights (1, 1) the sums decide every sample.
A = np.array([[3.0, 0, 0], [0, 2, 1], [0, 0, 1], [2, 0, 1]], dtype=np.float32)
B = np.array([[0.0, 1, 0], [2, 0, 0.5], [0, 0, 4], [0, 3, 0]], dtype=np.float32)


def write_scores(path, names, scores):
    with open(path, 'wb') as f:
        pickle.dump({n: s for n, s in zip(names, scores)}, f)
    return str(path)


def run(tmp_path, *args):
    out = tmp_path / 'out.json'
    assert ensemble_main([*map(str, args), '--json', str(out)]) == 0
    return json.loads(out.read_text())


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / 'labels.npy', LABELS)
    return write_scores(tmp_path / 'a.pkl', NAMES, A), write_scores(tmp_path / 'b.pkl', NAMES, B)


def test_fused_top1_and_top5_by_hand(tmp_path, files):
    # A predicts 0, 1, 2, 0 → s0, s1, s2 right (75 %); B predicts 1, 0, 2, 1 → s2, s3 right
    # (50 %). A + B: s0 [3, 1, 0] → 0 ✓; s1 [2, 2, 1.5] → 0 (first of the tie) ✗; s2 [0, 0,
    # 5] → 2 ✓; s3 [2, 3, 1] → 1 ✓.
    report = run(tmp_path, '--scores', *files, '--labels', tmp_path / 'labels.npy')
    assert report[files[0]]['top1'] == 75.0 and report[files[1]]['top1'] == 50.0
    assert report['fused']['top1'] == 75.0 and report['fused']['weights'] == [1.0, 1.0]
    # Top-2 of 3 classes (top-5 is capped at the class count: 100 %); mean class: classes 0, 1, 2
    # → 1, 0.5, 1.
    assert report['fused']['top5'] == 100.0
    assert report['fused']['mean_class'] == pytest.approx(100 * 2.5 / 3)
    # A + 3B: s0 [3, 3, 0] → 0 ✓; s1 [6, 2, 2.5] → 0 ✗; s2 [0, 0, 13] ✓; s3 [2, 9, 1] ✓
    # → 75 %.
    report = run(
        tmp_path, '--scores', *files, '--labels', tmp_path / 'labels.npy', '--weights', 1, 3
    )
    assert report['fused']['top1'] == 75.0
    report = run(
        tmp_path, '--scores', *files, '--labels', tmp_path / 'labels.npy', '--weights', 1, 0
    )
    assert report['fused']['top1'] == 75.0 and report['fused']['weights'] == [1.0, 0.0]


def test_json_output_that_would_destroy_a_file_is_refused_before_any_work(
        tmp_path, files, capsys):
    checkpoint = tmp_path / 'best.pt'
    checkpoint.write_bytes(b'weights')
    before = open(files[0], 'rb').read()
    scores = ['--scores', *files, '--labels', str(tmp_path / 'labels.npy')]
    for out, problem in (
        (checkpoint, f'--json {checkpoint}: the output must be a .json file'),
        (files[0], f'--json {files[0]}: the output must be a .json file'),
        (tmp_path / 'no' / 'fused.json', f'the folder {tmp_path / "no"} does not exist'),
        (tmp_path, f'--json {tmp_path} is a folder; name a .json file'),
    ):
        assert ensemble_main([*scores, '--json', str(out)]) == 2
        err = capsys.readouterr()
        assert err.err.startswith('error: ') and problem in err.err and err.out == ''
    assert checkpoint.read_bytes() == b'weights' and open(files[0], 'rb').read() == before
    # nor one of its inputs that has a .json name
    labels = tmp_path / 'labels.json'
    labels.write_text(json.dumps(LABELS.tolist()))
    assert ensemble_main(['--scores', *files, '--val-scores', str(labels), '--json',
                          str(labels)]) == 2
    assert 'is also an input of this command' in capsys.readouterr().err


def test_streams_align_by_name_and_mismatches_are_refused(tmp_path, files, capsys):
    shuffled = write_scores(tmp_path / 'b_shuffled.pkl', NAMES[::-1], B[::-1])
    same = run(tmp_path, '--scores', files[0], files[1], '--labels', tmp_path / 'labels.npy')
    aligned = run(tmp_path, '--scores', files[0], shuffled, '--labels', tmp_path / 'labels.npy')
    assert aligned['fused'] == same['fused']
    short = write_scores(tmp_path / 'short.pkl', NAMES[:3], B[:3])
    assert (
        ensemble_main(['--scores', files[0], short, '--labels', str(tmp_path / 'labels.npy')]) == 2
    )
    assert 'short.pkl holds 3 samples, expected 4' in capsys.readouterr().err
    other = write_scores(tmp_path / 'other.pkl', ['s0', 's1', 's2', 'x9'], B)
    assert (
        ensemble_main(['--scores', files[0], other, '--labels', str(tmp_path / 'labels.npy')]) == 2
    )
    assert 'other.pkl lacks 1 of the expected samples, e.g. s3' in capsys.readouterr().err
    assert (
        ensemble_main(
            ['--scores', *files, '--weights', '1', '--labels', str(tmp_path / 'labels.npy')]
        )
        == 2
    )
    assert '1 weights for 2 streams' in capsys.readouterr().err


class Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f'touch {self.target}',))


def test_restricted_unpickler_refuses_code(tmp_path):
    target = tmp_path / 'pwned'
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'s0': Exploit(target)}))
    with pytest.raises(
        ConfigError, match=r'evil.pkl: refused: the pickle asks for (posix|os)\.system'
    ):
        load_scores(str(path))
    assert not target.exists()
    # numpy arrays and scalars inside plain containers are fine.
    ok = tmp_path / 'ok.pkl'
    ok.write_bytes(
        pickle.dumps({'a': np.arange(3, dtype=np.float32), 'b': np.float64(2.0) * np.ones(3)})
    )
    names, scores = load_scores(str(ok))
    assert names == ['a', 'b'] and scores.tolist() == [[0, 1, 2], [2, 2, 2]]


def test_reference_label_files(tmp_path):
    np.savez(
        tmp_path / 'NTU60_CV.npz',
        x_test=np.zeros((3, 2, 150), np.float32),
        y_test=np.eye(60)[[5, 0, 59]],
    )
    assert load_label_file(str(tmp_path / 'NTU60_CV.npz'))[1].tolist() == [5, 0, 59]
    # the reference NW-UCLA label list, labels 1..10
    with open(tmp_path / 'val_label.pkl', 'wb') as f:
        pickle.dump(
            [
                {'file_name': 'a01_s01_e00_v03', 'length': 40, 'label': 1},
                {'file_name': 'a12_s02_e01_v03', 'length': 30, 'label': 10},
            ],
            f,
        )
    names, labels = load_label_file(str(tmp_path / 'val_label.pkl'))
    assert names == ['a01_s01_e00_v03', 'a12_s02_e01_v03'] and labels.tolist() == [0, 9]
    (tmp_path / 'ids.txt').write_text('3\n1\n')
    assert load_label_file(str(tmp_path / 'ids.txt')) == (None, pytest.approx(np.array([3, 1])))


def test_reference_positional_score_files_and_default_weights(tmp_path):
    # Four streams named as the reference feeder names samples (test_0, ...), labels from a
    # reference .npz.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 60, 20)
    np.savez(
        tmp_path / 'NTU60_CS.npz',
        x_test=np.zeros((20, 2, 150), np.float32),
        y_test=np.eye(60)[labels],
    )
    names = [f'test_{i}' for i in range(20)]
    streams = [
        write_scores(tmp_path / f'{s}.pkl', names, rng.normal(size=(20, 60))) for s in 'abcd'
    ]
    report = run(
        tmp_path,
        '--scores',
        *streams,
        '--labels',
        tmp_path / 'NTU60_CS.npz',
        '--dataset',
        'ntu60',
        '--benchmark',
        'xsub',
    )
    assert report['fused']['weights'] == [2, 2, 1, 1]
    fused = sum(w * load_scores(p)[1] for w, p in zip((2, 2, 1, 1), streams))
    assert report['fused']['top1'] == pytest.approx(100 * np.mean(fused.argmax(1) == labels))


def test_search_weights_uses_validation_scores_only(tmp_path, files):
    # On validation, stream B is always right and A always wrong: the search must pick A's weight 0,
    # although on the test split A alone would score more (75 % vs 50 %).
    val_names = ['v0', 'v1', 'v2']
    val_labels = np.array([2, 0, 1])
    np.save(tmp_path / 'val_labels.npy', val_labels)
    val_a = write_scores(tmp_path / 'val_a.pkl', val_names, np.eye(3)[(val_labels + 1) % 3] * 5)
    val_b = write_scores(tmp_path / 'val_b.pkl', val_names, np.eye(3)[val_labels])
    report = run(
        tmp_path,
        '--scores',
        *files,
        '--labels',
        tmp_path / 'labels.npy',
        '--search-weights',
        '--val-scores',
        val_a,
        val_b,
        '--val-labels',
        tmp_path / 'val_labels.npy',
    )
    assert report['fused']['weights'][0] == 0.0 and report['fused']['weights'][1] > 0
    # B alone on the test split, as tuned on validation
    assert report['fused']['top1'] == 50.0


def test_search_weights_on_runs_without_a_validation_split_says_so(tmp_path, demo_root, capsys):
    # the message named the val score file that results.json was said to name, which it does not
    runs = [fake_run(tmp_path / name, demo_root, {})[0] for name in ('joint', 'bone')]
    assert ensemble_main(['--scores', *runs, '--epoch', 'best', '--search-weights']) == 2
    assert capsys.readouterr().err == (
        f'error: {runs[0]}: no val scores: the run held out no validation split (val_ratio 0); '
        f'train it with val_ratio > 0\n')


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'scores')


def fixture(name):
    return os.path.join(FIXTURES, name)


def test_published_positional_score_files_align_with_a_named_label_list(tmp_path):
    """FR-Head's NW-UCLA format: keys numpy int64 0..5 (and plain ints), labels from val_label.pkl
    (1-based, named). Labels 5 1 10 3 3 7 → 4 0 9 2 2 6; the joint stream (scores 2) predicts
    4 0 9 2 1 6 (5 of 6), the bone stream (scores 1) 4 3 9 2 2 0 (4 of 6)."""
    joint, bone = fixture('joint_epoch1_test_score.pkl'), fixture('bone_epoch1_test_score.pkl')
    names, _ = load_scores(joint)
    assert names == ['0', '1', '2', '3', '4', '5']
    report = run(tmp_path, '--scores', joint, bone, '--labels', fixture('val_label.pkl'))
    assert report[joint]['top1'] == pytest.approx(500 / 6)
    assert report[bone]['top1'] == pytest.approx(400 / 6)
    # Weights 1, 1: sample 1 gets 2 for class 0 and 1 for class 3 → 0, right; sample 4: 2 for 1, 1
    # for 2 → 1, wrong; sample 5: 2 for 6, 1 for 0 → 6, right: 5 of 6.
    assert report['fused']['top1'] == pytest.approx(500 / 6)
    # Weights 1, 3: the bone stream decides every disagreement: 4 3 9 2 2 0 → 4 of 6.
    report = run(
        tmp_path, '--scores', joint, bone, '--labels', fixture('val_label.pkl'), '--weights', 1, 3
    )
    assert report['fused']['top1'] == pytest.approx(400 / 6)
    # The reference feeder's test_0-style keys align by position with either.
    named = fixture('joint_test_keys_score.pkl')
    report = run(tmp_path, '--scores', named, bone, '--labels', fixture('val_label.pkl'))
    assert report[named]['top1'] == pytest.approx(500 / 6)
    assert report['fused']['top1'] == pytest.approx(500 / 6)


def test_positional_files_are_refused_only_when_counts_differ(tmp_path, capsys):
    scores = load_scores(fixture('joint_epoch1_test_score.pkl'))[1]
    short = write_scores(tmp_path / 'short.pkl', [np.int64(i) for i in range(5)], scores[:5])
    assert ensemble_main(['--scores', short, '--labels', fixture('val_label.pkl')]) == 2
    assert capsys.readouterr().err == (
        f'error: {fixture("val_label.pkl")} holds 6 samples, expected 5\n'
    )
    assert (
        ensemble_main(
            [
                '--scores',
                fixture('joint_epoch1_test_score.pkl'),
                short,
                '--labels',
                fixture('val_label.pkl'),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == f'error: {short} holds 5 samples, expected 6\n'
