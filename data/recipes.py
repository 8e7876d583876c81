"""What `data/prepare.py` reads for each dataset and where each sample goes.

A recipe lists sources (a raw file, for PKU-MMD a skeleton file with its label file, for pyskl one
record of its annotation file), a function that turns one source into samples, and for each
benchmark the sources of each split in the split's final order.
"""

import functools
import os
from dataclasses import dataclass, field
from typing import Optional

from data import DataFileError, custom, fit_persons, ntu, pkummd, pyskl, ucla
from data.ntu_splits import BENCHMARKS, NUM_CLASS, SETUPS, split_orders
from data.storage import XY_SCORE, XYZ
from graph import get_layout
from torchlight.registry import ConfigError

HERE = os.path.dirname(os.path.abspath(__file__))
NTU_MISSING_LISTS = {
    'ntu60': 'NTU_RGBD_samples_with_missing_skeletons.txt',
    'ntu120': 'NTU_RGBD120_samples_with_missing_skeletons.txt',
}
PKUMMD_SPLIT_FILES = {'xsub': 'cross-subject.txt', 'xview': 'cross-view.txt'}


@dataclass
class Recipe:
    dataset: str
    sources: list  # what `read` takes, in reading order
    # source → ([(name, 0-based label, frames (T, M, V, C)[, {per-sample value}])], [problems]);
    # may raise
    read: callable
    # benchmark → split → indices into `sources`, in the split's order
    splits: dict
    sample_shape: tuple  # (M, V, C)
    layout: str
    class_names: list
    # benchmark → the reference's .npz file name
    npz_names: dict = field(default_factory=dict)
    left_out: dict = field(default_factory=dict)  # reason → names not read
    problems: list = field(default_factory=list)  # files refused before reading, and why
    # names of the per-sample values (data/storage.py OPTIONAL) each sample comes with
    per_sample: tuple = ()
    source_kind: str = 'files'  # what a source is, in the summary
    # what the C channels hold, XYZ or XY_SCORE; None where the preparation cannot know
    channels: Optional[str] = XYZ
    # how every sequence was translated to the origin, by name (ntu.CENTRING, pkummd.CENTRING);
    # '' when not: predict.py centres its inputs so for runs on such data
    centred: str = ''


def files_in(raw, suffix):
    """Sorted stems of the files in `raw` ending with `suffix`."""
    if not os.path.isdir(raw):
        raise ConfigError(f'--raw {raw} is not a directory')
    names = sorted(f[: -len(suffix)] for f in os.listdir(raw) if f.endswith(suffix))
    if not names:
        raise ConfigError(f'--raw {raw} holds no {suffix} file')
    return names


# ---------------------------------------------------------------------------------------- NTU RGB+D


def read_ntu(dataset, path):
    """One sample in two person slots (a single actor's second slot: data.fit_persons)."""
    name = ntu.sample_name(path)
    action = ntu.parse_name(name)['action']
    if not 1 <= action <= NUM_CLASS[dataset]:
        raise DataFileError(
            f'{path}: unknown action id A{action:03d} for {dataset} '
            f'(A001..A{NUM_CLASS[dataset]:03d})'
        )
    return [(name, action - 1, fit_persons(ntu.prepare_sequence(path), 2, dataset))], []


def ntu_recipe(dataset, raw):
    names = files_in(raw, '.skeleton')
    misnamed = [n for n in names if not ntu.NAME.match(n)]
    problems = [
        f'{os.path.join(raw, n)}.skeleton: not an NTU sample name (SsssCcccPpppRrrrAaaa)'
        for n in misnamed
    ]
    names = [
        n for n in names if n not in misnamed and ntu.parse_name(n)['setup'] in SETUPS[dataset]
    ]
    with open(os.path.join(HERE, 'ntu_meta', NTU_MISSING_LISTS[dataset])) as f:
        missing = {line.strip() for line in f}
    known_missing = [n for n in names if n in missing]
    names = [n for n in names if n not in missing]
    class_names = ntu_class_names()[: NUM_CLASS[dataset]]
    short = {
        'ntu60': {'xsub': 'NTU60_CS.npz', 'xview': 'NTU60_CV.npz'},
        'ntu120': {'xsub': 'NTU120_CSub.npz', 'xset': 'NTU120_CSet.npz'},
    }[dataset]
    return Recipe(
        dataset=dataset,
        sources=[os.path.join(raw, f'{n}.skeleton') for n in names],
        read=functools.partial(read_ntu, dataset),
        splits={b: split_orders(names, dataset, b) for b in BENCHMARKS[dataset]},
        sample_shape=(2, 25, 3),
        layout='ntu25',
        class_names=class_names,
        npz_names=short,
        left_out={'on the official list of samples with missing skeletons': known_missing},
        problems=problems,
        centred=ntu.CENTRING,
    )


# ------------------------------------------------------------------------------------------ NW-UCLA


def read_ucla(source):
    name, label, path = source
    return [(name, label, ucla.load_sequence(path))], []


def ucla_recipe(raw):
    """The samples of the reference's train and test lists (views 1-2, view 3), in their order."""
    available = set(files_in(raw, '.json'))
    lists = ucla.reference_lists()
    listed = [entry for split in ('train', 'test') for entry in lists[split]]
    found = [entry for entry in listed if entry['file_name'] in available]
    if not found:
        raise ConfigError(
            f'--raw {raw} holds none of the NW-UCLA files of the reference lists '
            f'(e.g. {listed[0]["file_name"]}.json)'
        )
    position = {entry['file_name']: i for i, entry in enumerate(found)}
    splits = {
        'xview': {
            split: [position[e['file_name']] for e in lists[split] if e['file_name'] in position]
            for split in ('train', 'test')
        }
    }
    sources = [
        (e['file_name'], e['label'] - 1, os.path.join(raw, f'{e["file_name"]}.json')) for e in found
    ]
    missing = [e['file_name'] for e in listed if e['file_name'] not in available]
    return Recipe(
        dataset='ucla',
        sources=sources,
        read=read_ucla,
        splits=splits,
        sample_shape=(1, 20, 3),
        layout='ucla20',
        class_names=list(ucla.CLASS_NAMES),
        left_out={'listed by the reference but not in --raw': missing},
    )


# ---------------------------------------------------------------------------------------- PKU-MMD I


def find_pkummd_files(raw):
    """Skeleton files, label files (those under a folder named like "label", or ending in .label)
    and split files anywhere under `raw`."""
    if not os.path.isdir(raw):
        raise ConfigError(f'--raw {raw} is not a directory')
    skeletons, labels, split_files = {}, {}, {}
    for folder, _, files in os.walk(raw):
        in_label_folder = 'label' in os.path.relpath(folder, raw).lower()
        for name in sorted(files):
            path = os.path.join(folder, name)
            stem, ext = os.path.splitext(name)
            if name.lower() in PKUMMD_SPLIT_FILES.values():
                split_files[name.lower()] = path
            elif pkummd.SEQUENCE.fullmatch(stem):
                kind = labels if in_label_folder or ext == '.label' else skeletons
                if stem in kind:
                    raise ConfigError(
                        f'two files for sequence {stem} under --raw: {kind[stem]} and {path}'
                    )
                kind[stem] = path
    missing = [f for f in PKUMMD_SPLIT_FILES.values() if f not in split_files]
    if missing:
        raise ConfigError(f'--raw {raw} holds no {" or ".join(missing)} (the PKU-MMD split files)')
    if not skeletons:
        raise ConfigError(f'--raw {raw} holds no skeleton file named like 0002-L.txt')
    return skeletons, labels, split_files


def pkummd_recipe(raw):
    skeletons, labels, split_files = find_pkummd_files(raw)
    try:
        lists = {b: pkummd.read_split_file(split_files[f]) for b, f in PKUMMD_SPLIT_FILES.items()}
    except DataFileError as err:
        raise ConfigError(str(err)) from None
    listed = sorted({s for train, test in lists.values() for s in train + test})
    usable = [s for s in listed if s in skeletons and s in labels]
    position = {s: i for i, s in enumerate(usable)}
    splits = {
        b: {
            'train': sorted(position[s] for s in train if s in position),
            'test': sorted(position[s] for s in test if s in position),
        }
        for b, (train, test) in lists.items()
    }
    return Recipe(
        dataset='pkummd',
        sources=[(s, skeletons[s], labels[s]) for s in usable],
        read=pkummd.read_sequence,
        splits=splits,
        sample_shape=(2, 25, 3),
        layout='ntu25',
        class_names=pkummd.class_names(),
        npz_names={'xsub': 'PKUMMD_CSub.npz', 'xview': 'PKUMMD_CView.npz'},
        left_out={
            'listed in a split file without a skeleton file': [
                s for s in listed if s not in skeletons
            ],
            'listed in a split file without a label file': [
                s for s in listed if s in skeletons and s not in labels
            ],
            'in no split list': sorted(set(skeletons) - set(listed)),
        },
        centred=pkummd.CENTRING,
    )


# -------------------------------------------------------------------------- pyskl annotation file


def pyskl_recipe(path, layout=None, persons=2):
    """The records of a pyskl file's benchmarks, in their split lists' order; records that are not
    dicts with a frame_dir, and second records of a frame_dir, are refused before reading."""
    if not os.path.isfile(path):
        raise ConfigError(f'--raw {path} is not a file (a pyskl annotation .pkl)')
    splits, records = pyskl.read_annotation_file(path)
    by_name, problems = pyskl.records_by_name(path, records)
    lists = pyskl.benchmarks(path, splits)
    listed = {str(name) for parts in lists.values() for names in parts.values() for name in names}
    used = [name for name in by_name if name in listed]
    position = {name: i for i, name in enumerate(used)}
    joints, channels = pyskl.keypoint_shape(path, list(by_name.values()))
    layout = layout or pyskl.infer_layout(path, (joints, channels))
    num_joints = get_layout(layout).num_joints
    used_records = [by_name[name] for name in used]
    names = pyskl.class_names(used_records, ntu_class_names())
    by_ntu_name = pyskl.ntu_labelled(used_records)
    return Recipe(
        dataset=os.path.splitext(os.path.basename(path))[0],
        sources=[
            (path, by_name[n], layout, channels, persons, len(names), by_ntu_name) for n in used
        ],
        read=pyskl.read_record,
        splits={
            benchmark: {
                split: [position[str(n)] for n in members if str(n) in position]
                for split, members in parts.items()
            }
            for benchmark, parts in lists.items()
        },
        sample_shape=(persons, num_joints, 3),
        layout=layout,
        class_names=names,
        left_out={
            'listed in a split without a record': sorted(listed - set(by_name)),
            'in no benchmark split': [name for name in by_name if name not in listed],
        },
        problems=problems,
        per_sample=('image_size',) if channels == 2 else (),
        source_kind='records',
        channels=XY_SCORE if channels == 2 else XYZ,
        centred=pyskl.centring(layout, channels),
    )


# ---------------------------------------------------------------------------- your own sequences


def custom_recipe(raw, layout, persons=2, test_ratio=0.2, seed=0):
    """The sequences that labels.csv lists, with its splits or a seeded stratified one (benchmark
    `default`); a listed sequence without its file is refused before reading."""
    if not os.path.isdir(raw):
        raise ConfigError(f'--raw {raw} is not a directory')
    if layout is None:
        raise ConfigError('--layout is needed for custom data: a layout name (e.g. coco17) or '
                          'the path of a layout file (.yaml)')
    num_joints = get_layout(layout).num_joints
    classes = custom.read_classes(os.path.join(raw, 'classes.txt'))
    rows = custom.read_labels(os.path.join(raw, 'labels.csv'), classes)
    sources, kept, problems = [], [], []
    for row in rows:
        try:
            path = custom.sequence_file(raw, row.name)
        except DataFileError as err:
            problems.append(str(err))
            continue
        sources.append((path, custom.sample_name(row.name), row.label, num_joints, persons))
        kept.append(row)
    if kept and kept[0].split is None:
        split = custom.stratified_split([row.label for row in kept], test_ratio, seed)
    else:
        split = {name: [i for i, row in enumerate(kept) if row.split == name]
                 for name in custom.SPLITS}
    empty = [name for name, members in split.items() if kept and not members]
    if empty:
        raise ConfigError(
            f'{os.path.join(raw, "labels.csv")}: no sequence with a file goes to the {empty[0]} '
            f'split (give some the split {empty[0]}, or raise --test-ratio)'
        )
    listed = {source[0] for source in sources}
    unlisted = sorted(
        f for f in os.listdir(raw)
        if custom.is_sequence_file(f) and os.path.join(raw, f) not in listed
    )
    return Recipe(
        dataset=os.path.basename(os.path.abspath(raw)),
        sources=sources,
        read=custom.read_custom_sequence,
        splits={'default': split},
        sample_shape=(persons, num_joints, 3),
        layout=layout,
        class_names=classes,
        left_out={'not listed in labels.csv': unlisted},
        problems=problems,
        channels=None,  # three channels may be x, y, z or x, y, score: the files do not say
    )


def ntu_class_names():
    """NTU RGB+D 120's 120 action names (NTU-60's are the first 60)."""
    with open(os.path.join(HERE, 'ntu_meta', 'ntu120_class_names.txt')) as f:
        return f.read().splitlines()


def build_recipe(dataset, raw, layout=None, persons=2, test_ratio=0.2, seed=0):
    """The recipe of `dataset` read from `raw`; `layout` and `persons` apply to pyskl and custom
    data, `test_ratio` and `seed` to custom data without a split column."""
    if layout is not None and dataset not in ('pyskl', 'custom'):
        raise ConfigError(f'--layout applies to pyskl and custom data; {dataset} has its own')
    if dataset == 'pyskl':
        return pyskl_recipe(raw, layout, persons)
    if dataset == 'custom':
        return custom_recipe(raw, layout, persons, test_ratio, seed)
    if dataset == 'ucla':
        return ucla_recipe(raw)
    if dataset == 'pkummd':
        return pkummd_recipe(raw)
    return ntu_recipe(dataset, raw)
