"""Classification metrics from score matrices: top-k, confusion matrix, per-class and
ambiguous-class accuracy.

All accuracies are returned in percent. Scores are (N, K) arrays (logits or probabilities), labels
(N,) ints.
"""

import math
import os
from typing import NamedTuple

import numpy as np

from torchlight.registry import ConfigError, closest
from torchlight.yamlfile import read_yaml


def topk_accuracy(scores, labels, k):
    """Percent of samples whose label is among the k highest scores."""
    k = min(k, scores.shape[1])
    topk = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    return 100.0 * float(np.mean(np.any(topk == labels[:, None], axis=1)))


def confusion_matrix(labels, predictions, num_class):
    """cm[i, j] = number of samples of true class i predicted as j."""
    cm = np.zeros((num_class, num_class), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def per_class_accuracy(cm):
    """Percent correct per true class; NaN for classes without samples."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return 100.0 * np.diag(cm) / np.where(totals > 0, totals, np.nan)


def mean_class_accuracy(cm):
    """Mean of the per-class accuracies over the classes that have samples."""
    return float(np.nanmean(per_class_accuracy(cm)))


def ambiguous_metrics(cm, groups):
    """Metrics over groups of mutually confusable classes.

    groups: {group name: [class ids]}. Returns
      accuracy:  percent correct over all samples whose true class is in some group
      groups:    {name: {accuracy, confusion, samples}}, where confusion is the percent of the
      group's samples
                 predicted as another class of the same group
    """
    per_group = {}
    for name, classes in groups.items():
        block = cm[np.ix_(classes, classes)]
        samples = int(cm[classes].sum())
        correct = int(np.trace(block))
        within = int(block.sum()) - correct
        per_group[name] = {
            'accuracy': 100.0 * correct / samples if samples else float('nan'),
            'confusion': 100.0 * within / samples if samples else float('nan'),
            'samples': samples,
        }
    members = sorted({c for classes in groups.values() for c in classes})
    total = int(cm[members].sum()) if members else 0
    accuracy = (
        100.0 * float(np.trace(cm[np.ix_(members, members)])) / total if total else float('nan')
    )
    return {'accuracy': accuracy, 'samples': total, 'groups': per_group}


class McNemar(NamedTuple):
    """McNemar's exact test of two classifiers on the same samples: how many only the first and
    only the second got right, and the two-sided p-value of equal accuracy."""

    only_first: int
    only_second: int
    p_value: float


def mcnemar_exact(first_correct, second_correct):
    """McNemar's exact test on two runs' per-sample correctness (booleans, the same samples in the
    same order).

    Only the n = b + c samples that one run got right and the other wrong carry information; if
    both runs are equally accurate, each of them is b's or c's with probability 1/2, so b follows
    Binomial(n, 1/2). p = P(a count at least as far from n/2 as the one seen) = 2 · P(X <= min(b,
    c)), at most 1; computed exactly with integers.
    """
    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if first.shape != second.shape:
        raise ValueError(f'correctness of {first.shape} and {second.shape} samples')
    only_first, only_second = int(np.sum(first & ~second)), int(np.sum(second & ~first))
    discordant = only_first + only_second
    tail = sum(math.comb(discordant, k) for k in range(min(only_first, only_second) + 1))
    return McNemar(only_first, only_second, min(1.0, 2 * tail / 2**discordant))


def evaluate_scores(scores, labels, num_class, groups=None):
    """All metrics of one evaluation as a dict (plus the confusion matrix under
    'confusion_matrix')."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    cm = confusion_matrix(labels, scores.argmax(axis=1), num_class)
    result = {
        'top1': topk_accuracy(scores, labels, 1),
        'top5': topk_accuracy(scores, labels, 5),
        'mean_class': mean_class_accuracy(cm),
        'confusion_matrix': cm,
    }
    if groups:
        result['ambiguous'] = ambiguous_metrics(cm, groups)
    return result


def resolve_groups(groups, class_names, source):
    """Map {group: [class name | 'A<n>' (1-based action id) | 0-based int]} to {group: [class
    ids]}."""
    index = {name: i for i, name in enumerate(class_names)}
    resolved = {}
    for group, members in groups.items():
        ids = []
        for member in members:
            if isinstance(member, int) and 0 <= member < len(class_names):
                ids.append(member)
            elif isinstance(member, str) and member in index:
                ids.append(index[member])
            elif (
                isinstance(member, str)
                and member[:1] == 'A'
                and member[1:].isdigit()
                and 1 <= int(member[1:]) <= len(class_names)
            ):
                ids.append(int(member[1:]) - 1)
            else:
                raise ConfigError(
                    f"{source}: group '{group}' names unknown class {member!r}"
                    f"{closest(member, class_names)}"
                )
        resolved[group] = ids
    return resolved


def load_groups(path, class_names):
    """{group: [class ids]} from a YAML file of groups (see resolve_groups); None without a file."""
    if path is None:
        return None
    if not os.path.isfile(path):
        raise ConfigError(f'ambiguous_groups file not found: {path}')
    groups = read_yaml(path) or {}
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise ConfigError(f'{path} must map group names to lists of classes')
    return resolve_groups(groups, class_names, path)


def format_metrics(m):
    """One line of the headline metrics, as the logs print them."""
    text = f"top-1 {m['top1']:.2f} %, top-5 {m['top5']:.2f} %, mean class {m['mean_class']:.2f} %"
    if 'ambiguous' in m:
        ambiguous = m['ambiguous']
        text += (
            f", ambiguous {ambiguous['accuracy']:.2f} %"
            if ambiguous.get('samples', 1)
            else ', ambiguous: no test samples'
        )
    return text


def format_groups(m):
    """One line per ambiguous group."""
    lines = []
    for name, g in m.get('ambiguous', {}).get('groups', {}).items():
        if not g['samples']:
            lines.append(f'    {name}: no test samples')
            continue
        lines.append(
            f"    {name}: accuracy {g['accuracy']:.2f} %, confused within the group "
            f"{g['confusion']:.2f} % ({g['samples']} samples)"
        )
    return lines
