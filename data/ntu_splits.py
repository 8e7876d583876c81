"""NTU RGB+D benchmarks: which samples train and which test, in the reference's order.

The reference preparation lists each split's samples id by id (for each performer id of the list,
that performer's samples in name order; likewise cameras and setups) and its score files are
positional, so a split's order here is that order, not plain name order.
"""

from data.ntu import parse_name

NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = (
    1,
    2,
    4,
    5,
    8,
    9,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    25,
    27,
    28,
    31,
    34,
    35,
    38,
    45,
    46,
    47,
    49,
    50,
    52,
    53,
    54,
    55,
    56,
    57,
    58,
    59,
    70,
    74,
    78,
    80,
    81,
    82,
    83,
    84,
    85,
    86,
    89,
    91,
    92,
    93,
    94,
    95,
    97,
    98,
    100,
    103,
)

# dataset → benchmark → (name field, training ids, test ids), the ids in the reference's order
BENCHMARKS = {
    'ntu60': {
        'xsub': (
            'performer',
            NTU60_XSUB_TRAIN,
            tuple(i for i in range(1, 41) if i not in NTU60_XSUB_TRAIN),
        ),
        'xview': ('camera', (2, 3), (1,)),
    },
    'ntu120': {
        'xsub': (
            'performer',
            NTU120_XSUB_TRAIN,
            tuple(i for i in range(1, 107) if i not in NTU120_XSUB_TRAIN),
        ),
        'xset': ('setup', tuple(range(2, 33, 2)), tuple(range(1, 33, 2))),
    },
}
SETUPS = {'ntu60': range(1, 18), 'ntu120': range(1, 33)}
NUM_CLASS = {'ntu60': 60, 'ntu120': 120}


def split_orders(names, dataset, benchmark):
    """{'train': [...], 'test': [...]}: positions in `names` (sorted sample names), in the reference
    order."""
    key, train_ids, test_ids = BENCHMARKS[dataset][benchmark]
    by_id = {}
    for position, name in enumerate(names):
        by_id.setdefault(parse_name(name)[key], []).append(position)
    return {
        split: [p for i in ids for p in by_id.get(i, [])]
        for split, ids in (('train', train_ids), ('test', test_ids))
    }
