"""The separability numbers of torchlight/separability.py on constructed feature sets: by hand,
well-separated and mixed clusters, linearly separable classes, groups with too few samples."""

import numpy as np
import pytest

from torchlight.separability import group_separability, separability


def test_a_tiny_case_by_hand():
    # 1-D: class 0 at 0, 1, 2 and class 1 at 10, 11, 12. Silhouette of 0: a = mean(1, 2) = 1.5,
    # b = mean(10, 11, 12) = 11, s = 9.5 / 11; of 1: a = 1, b = 10, s = 0.9; of 2: a = 1.5, b = 9,
    # s = 7.5 / 9; class 1 mirrors class 0.
    features = np.array([[0.0], [1], [2], [10], [11], [12]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    result = separability(features, labels)
    assert result['silhouette'] == pytest.approx((9.5 / 11 + 0.9 + 7.5 / 9) / 3)
    # 3 samples per class: 3 folds, training folds of 4, hence k = 3 (odd, no tie)
    assert (result['folds'], result['neighbours'], result['samples']) == (3, 3, 6)
    assert result['knn'] == 100.0 and result['probe'] == 100.0


def test_well_separated_clusters_score_near_one_and_mixed_ones_near_zero():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 60)
    centres = np.eye(3, 16) * 50
    separated = separability(centres[labels] + rng.normal(size=(180, 16)), labels)
    assert separated['silhouette'] > 0.9
    assert separated['knn'] == 100.0 and separated['probe'] == 100.0
    assert (separated['folds'], separated['neighbours']) == (5, 5)
    mixed = separability(rng.normal(size=(180, 16)), labels)
    assert abs(mixed['silhouette']) < 0.05
    # chance is 1/3: 180 samples put a 95 % interval of about ±7 points around it
    assert 20 < mixed['knn'] < 47 and 20 < mixed['probe'] < 47


def test_a_probe_separates_linearly_separable_classes_that_are_no_clusters():
    rng = np.random.default_rng(1)
    features = rng.uniform(-1, 1, size=(400, 8))
    features = features[np.abs(features[:, 0]) > 0.2]    # a margin around the hyperplane x0 = 0
    labels = (features[:, 0] > 0).astype(int)
    result = separability(features, labels)
    assert result['probe'] == 100.0
    # one direction of eight: the classes touch as clusters, and the silhouette says so
    assert result['silhouette'] < 0.25 and result['knn'] < 100.0


def test_groups_with_few_samples_get_fewer_folds_or_a_reason():
    rng = np.random.default_rng(2)
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1 + [3] * 10)
    features = rng.normal(size=(len(labels), 4)) + 20 * np.eye(4)[labels]
    names = ['wave', 'salute', 'hop', 'jump']
    groups = {'wave vs salute': [0, 1], 'hop vs jump': [2, 3]}
    result = group_separability(features, labels, groups, names)
    assert result['wave vs salute']['folds'] == 3 and result['wave vs salute']['samples'] == 13
    assert result['hop vs jump'] == {
        'samples': 11,
        'skipped': 'hop has 1 test sample(s); cross-validation needs 2 per class',
    }
