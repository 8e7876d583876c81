"""How well the classes of a group of confusable classes separate in a feature space, in three
numbers (scikit-learn):

- silhouette: mean over samples of (b − a) / max(a, b), a the mean Euclidean distance to the
  sample's own class, b to the nearest other class; 1 for tight, distant classes, about 0 when
  the classes overlap;
- k-NN accuracy (%): each sample classified by its k = 5 nearest neighbours (Euclidean) among the
  other folds' samples, stratified 5-fold cross-validation;
- linear probe accuracy (%): logistic regression on standardised features, the same folds.

The silhouette and k-NN read the feature space as it is (its distances); the probe asks whether a
hyperplane separates the classes, which standardising does not change but makes quicker to fit.
A group whose smallest class has fewer than 5 samples gets as many folds as that class has
samples (recorded as `folds`); fewer than 2 samples in a class leave the group unmeasured, with the
reason. `<run>/separability_<best|last>.json` holds a run's numbers (written by tools/embed.py,
read by tools/compare.py and tools/tables.py).
"""

import json
import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from torchlight.registry import ConfigError

FOLDS = 5
NEIGHBOURS = 5


def separability(features, labels, seed=0):
    """{'samples', 'folds', 'neighbours', 'silhouette', 'knn', 'probe'} of labelled features
    (n, C) holding at least two classes with two samples or more each; accuracies in %."""
    smallest = int(np.bincount(labels)[np.unique(labels)].min())
    folds = min(FOLDS, smallest)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels))
    # with few samples, the training folds may hold fewer than k samples; an odd k avoids ties
    # between two classes
    neighbours = min(NEIGHBOURS, min(len(train) for train, _ in splits))
    neighbours -= 1 - neighbours % 2
    knn = KNeighborsClassifier(n_neighbors=neighbours)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {
        'samples': len(labels),
        'folds': folds,
        'neighbours': neighbours,
        'silhouette': float(silhouette_score(features, labels)),
        'knn': cross_validated_accuracy(knn, features, labels, splits),
        'probe': cross_validated_accuracy(probe, features, labels, splits),
    }


def cross_validated_accuracy(classifier, features, labels, splits):
    """Percent of samples predicted right by the classifier trained on the other folds."""
    predicted = cross_val_predict(classifier, features, labels, cv=splits)
    return 100.0 * float(np.mean(predicted == labels))


def group_separability(features, labels, groups, class_names, seed=0):
    """{group: separability of its classes' samples}, or {group: {'samples', 'skipped': why}} for
    a group with a class of fewer than 2 samples."""
    results = {}
    for name, classes in groups.items():
        inside = np.isin(labels, classes)
        counts = {c: int(np.sum(labels == c)) for c in classes}
        scarce = [c for c in classes if counts[c] < 2]
        if scarce:
            results[name] = {
                'samples': int(inside.sum()),
                'skipped': f'{class_names[scarce[0]]} has {counts[scarce[0]]} test sample(s); '
                f'cross-validation needs 2 per class',
            }
            continue
        results[name] = separability(features[inside], labels[inside], seed)
    return results


def separability_file(run_dir, epoch):
    return os.path.join(run_dir, f'separability_{epoch}.json')


def read_separability(run_dir, epoch, results):
    """(a run's {group: numbers} for its `epoch` ('best' or 'last'), or None, note or None): None
    when tools/embed.py has not measured that epoch, or measured a checkpoint that is no longer it
    (the note says so); `results` is the run's results.json."""
    path = separability_file(run_dir, epoch)
    if epoch not in ('best', 'last') or not os.path.isfile(path):
        return None, None
    try:
        with open(path) as f:
            content = json.load(f)
        measured, groups = content['checkpoint_epoch'], content['groups']
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f'{path} is not a separability file of tools/embed.py ({err})') from None
    current = (results.get(epoch) or {}).get('epoch')
    if measured != current:
        return None, (
            f'{path} measured epoch {measured}, but the run\'s {epoch} epoch is now {current}: '
            f'left out (run python -m tools.embed again)'
        )
    return groups, None
