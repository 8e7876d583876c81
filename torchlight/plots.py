"""Figures for evaluations (matplotlib, an optional dependency: `pip install matplotlib`).

Figures are built with matplotlib's object API (no pyplot, no global state) so that they can be
saved as PNG or handed to tensorboard's `add_figure`.
"""

import io
import os
import re

import numpy as np

from torchlight.files import atomic_write


def available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout='constrained')


def confusion_figure(cm, class_names, title, classes=None, separators=()):
    """Row-normalised confusion matrix (percent of each true class), restricted to `classes` if
    given, with lines after the positions in `separators` (to delimit groups)."""
    classes = list(range(len(class_names))) if classes is None else list(classes)
    block = cm[np.ix_(classes, classes)].astype(float)
    # all predictions of those classes
    totals = cm[classes].sum(axis=1, keepdims=True)
    percent = 100 * block / np.maximum(totals, 1)
    size = max(5.0, 0.22 * len(classes) + 3)
    figure = new_figure(size, size)
    axes = figure.add_subplot()
    image = axes.imshow(percent, cmap='Blues', vmin=0, vmax=100)
    labels = [class_names[c] for c in classes]
    font = 9 if len(classes) <= 30 else 6
    axes.set_xticks(range(len(classes)), labels, rotation=90, fontsize=font)
    axes.set_yticks(range(len(classes)), labels, fontsize=font)
    axes.set_xlabel('predicted')
    axes.set_ylabel('true')
    axes.set_title(title)
    if len(classes) <= 30:
        for i in range(len(classes)):
            for j in range(len(classes)):
                if block[i, j]:
                    axes.text(
                        j,
                        i,
                        f'{percent[i, j]:.0f}',
                        ha='center',
                        va='center',
                        fontsize=7,
                        color='white' if percent[i, j] > 50 else 'black',
                    )
    for position in separators:
        axes.axhline(position - 0.5, color='grey', linewidth=0.8)
        axes.axvline(position - 0.5, color='grey', linewidth=0.8)
    figure.colorbar(image, ax=axes, shrink=0.6, label='% of the true class')
    return figure


def group_layout(groups):
    """Classes of the groups in group order (each class once) and the positions where a new group
    starts."""
    classes, separators = [], []
    for members in groups.values():
        new = [c for c in members if c not in classes]
        if classes and new:
            separators.append(len(classes))
        classes += new
    return classes, separators


def ambiguous_confusion_figure(cm, class_names, groups, title):
    classes, separators = group_layout(groups)
    return confusion_figure(cm, class_names, title, classes, separators)


def accuracy_difference_figure(class_names, first, second, *, counts, labels, title):
    """Horizontal bars: per-class accuracy of `second` minus `first`, classes sorted by the
    difference."""
    difference = np.asarray(second) - np.asarray(first)
    order = np.argsort(difference, kind='stable')
    figure = new_figure(8, max(3.0, 0.28 * len(order) + 1.5))
    axes = figure.add_subplot()
    colours = ['tab:green' if d > 0 else 'tab:red' if d < 0 else 'grey' for d in difference[order]]
    axes.barh(range(len(order)), difference[order], color=colours)
    axes.set_yticks(
        range(len(order)),
        [f'{class_names[c]} ({counts[c]})' for c in order],
        fontsize=9 if len(order) <= 40 else 6,
    )
    axes.axvline(0, color='black', linewidth=0.8)
    axes.set_xlabel(f'accuracy of {labels[1]} minus {labels[0]} (percentage points)')
    axes.set_title(title)
    return figure


def file_stem(text):
    """`text` as a file name part: runs of other characters than letters, digits and hyphens
    become one underscore (a label such as 'a/seed1' must not name a subfolder)."""
    return re.sub(r'[^0-9A-Za-z-]+', '_', text).strip('_')


def save(figure, path):
    """Written whole or not at all (a killed process leaves no half-written figure); the format
    is the file's suffix."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=os.path.splitext(path)[1][1:].lower() or 'png')
    atomic_write(path, buffer.getvalue())
