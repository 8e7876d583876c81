"""PKU-MMD phase I: continuous sequences → one clip per labelled action interval.

Raw files (dataset README): a skeleton file per sequence `XXXX-V` (view L, M or R), one line per
frame with 150 numbers (2 bodies × 25 joints × xyz, the second body zero when absent); a label
file per
  sequence with one
line `action_id,start_frame,end_frame,confidence` per action instance; split files
`cross-subject.txt` and `cross-view.txt` listing training and validation (test) sequence ids.

A clip is frames start..end of its sequence, both included, counted from 0 (a 1-based reading shifts
a clip by one frame; frames past the end of the file are cut off). As for NTU, frames with no body
are removed and the clip is translated to the spine-middle joint of its first frame's first present
body; an absent body stays zero.
"""

import os
import re

import numpy as np

from data import DataFileError, read_text

NUM_CLASS = 51
SEQUENCE = re.compile(r'\d{4}-[LMR]')
META = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pkummd_meta')


def class_names():
    with open(os.path.join(META, 'class_names.txt')) as f:
        return f.read().splitlines()


def read_split_file(path):
    """(training ids, test ids) from a split file: the ids after a "Training videos" heading and
    after a "Validation videos" heading (also spelt "Validataion", as in the dataset's files)."""
    text = read_text(path)
    headings = list(
        re.finditer(r'(training|validat\w*|testing)\s+videos?\s*:?', text, re.IGNORECASE)
    )
    lists = {}
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        kind = 'train' if heading.group(1).lower() == 'training' else 'test'
        lists.setdefault(kind, []).extend(SEQUENCE.findall(text[heading.end() : end]))
    for kind, heading in (('train', '"Training videos:"'), ('test', '"Validation videos:"')):
        if not lists.get(kind):
            raise DataFileError(f'{path}: no sequence id (like 0002-L) after a {heading} line')
    both = sorted(set(lists['train']) & set(lists['test']))
    if both:
        raise DataFileError(
            f'{path}: {len(both)} sequences are listed for both training and validation, '
            f'e.g. {both[0]}'
        )
    return lists['train'], lists['test']


def read_skeleton(path):
    """(F, 2, 25, 3) float32: every line of a skeleton file."""
    frames = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = np.array(line.replace(',', ' ').split(), dtype=np.float32)
        except ValueError:
            raise DataFileError(f'{path}:{number}: not a line of numbers') from None
        if values.size != 150:
            raise DataFileError(
                f'{path}:{number}: {values.size} numbers, expected 150 (2 bodies x 25 joints x 3)'
            )
        if not np.all(np.isfinite(values)):
            raise DataFileError(f'{path}:{number}: NaN or Inf')
        frames.append(values)
    if not frames:
        raise DataFileError(f'{path}: empty skeleton file')
    return np.stack(frames).reshape(-1, 2, 25, 3)


def read_labels(path):
    """([(line number, action id, start, end)], [problems]): malformed lines are problems, not
    stops."""
    intervals, problems = [], []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = [x for x in re.split(r'[,\s]+', line.strip()) if x]
        try:
            action, start, end = (int(x) for x in fields[:3])
        except ValueError:
            problems.append(f'{path}:{number}: expected action_id,start_frame,end_frame,confidence')
            continue
        if not 1 <= action <= NUM_CLASS:
            problems.append(f'{path}:{number}: unknown action id {action} (1..{NUM_CLASS})')
        elif not 0 <= start <= end:
            problems.append(f'{path}:{number}: bad interval {start}..{end}')
        else:
            intervals.append((number, action, start, end))
    return intervals, problems


# How the preparation centres a clip, as prepared files record it (their `centred` attribute).
CENTRING = 'first present body'


def translate_clip(clip):
    """Remove frames with no body, then centre the clip (centre_on_first_present)."""
    clip = clip[np.any(clip != 0, axis=(1, 2, 3))]
    return centre_on_first_present(clip)


def centre_on_first_present(frames):
    """Frames (T, M, V, C) minus the spine middle (joint 2) of the first present body of the first
    frame holding one; absent bodies stay zero. Centring a centred sequence changes nothing."""
    present = np.any(frames != 0, axis=(2, 3))                            # (T, M)
    first = np.flatnonzero(present.any(axis=1))[0]
    origin = frames[first, np.argmax(present[first]), 1]
    return np.where(present[:, :, None, None], frames - origin, 0).astype(np.float32)


def read_sequence(source):
    """source = (sequence id, skeleton path, label path) → ([(name, label, (T, 2, 25, 3))],
    [problems])."""
    sequence, skeleton_path, label_path = source
    skeleton = read_skeleton(skeleton_path)
    intervals, problems = read_labels(label_path)
    clips = []
    for line, action, start, end in intervals:
        clip = skeleton[start : end + 1]
        if not np.any(clip):
            problems.append(
                f'{label_path}:{line}: no body in frames {start}..{end} '
                f'(the skeleton file has {len(skeleton)} frames)'
            )
            continue
        clips.append((f'{sequence}_{line:03d}', action - 1, translate_clip(clip)))
    return clips, problems
