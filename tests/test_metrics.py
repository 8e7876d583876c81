import math

import numpy as np

from torchlight.metrics import (
    ambiguous_metrics,
    confusion_matrix,
    evaluate_scores,
    mean_class_accuracy,
    per_class_accuracy,
    resolve_groups,
    topk_accuracy,
)

# Ten samples, four classes. Worked out by hand below.
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
PREDICTIONS = np.array([0, 1, 0, 0, 1, 2, 3, 2, 2, 3])
HAND_CM = np.array(
    [
        [2, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 3, 1],
        [0, 0, 0, 1],
    ]
)


def one_hot_scores(predictions, num_class=4):
    scores = np.zeros((len(predictions), num_class))
    scores[np.arange(len(predictions)), predictions] = 1.0
    return scores


def test_confusion_matrix_matches_hand_count():
    np.testing.assert_array_equal(confusion_matrix(LABELS, PREDICTIONS, 4), HAND_CM)


def test_per_class_and_mean_class_accuracy():
    np.testing.assert_allclose(per_class_accuracy(HAND_CM), [200 / 3, 50, 75, 100])
    assert math.isclose(mean_class_accuracy(HAND_CM), (200 / 3 + 50 + 75 + 100) / 4)
    # A class without samples is left out of the mean rather than counted as 0 %.
    cm = np.array([[1, 1], [0, 0]])
    assert math.isnan(per_class_accuracy(cm)[1])
    assert mean_class_accuracy(cm) == 50.0


def test_topk_accuracy():
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    labels = np.array([2, 1, 1])
    assert topk_accuracy(scores, labels, 1) == 0.0
    # Sample 3: classes 0 and 1 tie for second place; the lower class id wins, so class 1 is not in
    # the top 2.
    assert math.isclose(topk_accuracy(scores, labels, 2), 200 / 3)
    # k larger than the class count
    assert topk_accuracy(scores, labels, 5) == 100.0


def test_ambiguous_metrics_by_hand():
    groups = {'a': [0, 1], 'b': [2, 3]}
    result = ambiguous_metrics(HAND_CM, groups)
    # Group a: 5 samples, 3 correct, 2 predicted as the other class of the group.
    assert result['groups']['a'] == {'accuracy': 60.0, 'confusion': 40.0, 'samples': 5}
    # Group b: 5 samples, 4 correct, 1 confused within the group.
    assert result['groups']['b'] == {'accuracy': 80.0, 'confusion': 20.0, 'samples': 5}
    assert result['accuracy'] == 70.0
    # Errors towards classes outside the group (0 → 1, 2 → 3) lower accuracy but are not
    # within-group confusion.
    only_a = ambiguous_metrics(HAND_CM, {'a': [0, 2]})['groups']['a']
    assert only_a == {'accuracy': 500 / 7, 'confusion': 0.0, 'samples': 7}


def test_evaluate_scores_combines_everything():
    result = evaluate_scores(one_hot_scores(PREDICTIONS), LABELS, 4, {'a': [0, 1]})
    assert result['top1'] == 70.0
    np.testing.assert_array_equal(result['confusion_matrix'], HAND_CM)
    assert result['ambiguous']['accuracy'] == 60.0


def test_group_members_by_name_action_id_or_index():
    names = ['wave', 'salute', 'jump up']
    assert resolve_groups({'g': ['wave', 'A2', 2]}, names, 'x.yaml') == {'g': [0, 1, 2]}
