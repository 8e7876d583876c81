"""What SF-Head's AC-FA gates emphasise, read from a model during a forward pass.

Each SF-Head refines its features with three attention gates (model/sf_head.py): one on the (C, V)
view, pooled over frames (a weight per channel and joint), one on the (T, C) view, pooled over
joints (a weight per frame and channel), and one on the (T, V) view, pooled over channels. Forward
hooks on the gates record them as the model runs, with no change to the model; the profiles below
average them over each head's channels and groups:

    joints   (N, M, V)     the (C, V) gate: which joints the head emphasises
    frames   (N, M, T')    the (T, C) gate: which frames (T' = the block's frames, after strides)
    map      (N, M, T', V) the (T, V) gate
    weights  (4,)          AC-FA's mixing weights softmax(w) of gate_CV(f_t), gate_TC(f_s),
                           gate_TV(f_c) and f_c
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F

# AC-FA's four mixed terms, in the order of SFHead.w
MIXED_TERMS = ('CV gate · f_t', 'TC gate · f_s', 'TV gate · f_c', 'f_c')


def heads_of(model):
    """(block name, SF-Head) of every block that has one, in order."""
    return [(name, block.sf_head) for name, block in zip(model.block_names, model.blocks)
            if block.sf_head is not None]


@contextmanager
def recording_gates(model):
    """Yields {block name: {'cv', 'tc', 'tv': gate}}, filled by each forward pass inside the
    block (the last pass wins)."""
    gates, handles = {}, []
    for name, head in heads_of(model):
        gates[name] = {}
        for view in ('cv', 'tc', 'tv'):
            def record(module, inputs, output, name=name, view=view):
                gates[name][view] = output.detach()
            handles.append(getattr(head, view).register_forward_hook(record))
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()


def gate_profiles(model, x):
    """{block name: {'joints', 'frames', 'map', 'weights'}} (numpy arrays, shapes in the module
    docstring) for input x (N, C, T, V, M), computed in evaluation mode (the model's mode is
    restored after)."""
    n, persons = x.shape[0], x.shape[-1]
    training = model.training
    model.eval()
    with torch.no_grad(), recording_gates(model) as gates:
        model(x)
    model.train(training)
    profiles = {}
    for name, head in heads_of(model):
        # the gates' batch axis is (sample, person, channel group), in that order
        def per_person(gate):
            return gate.view(n, persons, head.groups, *gate.shape[1:])
        cv, tc, tv = (per_person(gates[name][view]) for view in ('cv', 'tc', 'tv'))
        profiles[name] = {
            'joints': cv.mean((2, 3))[:, :, 0].numpy(),      # (N, M, G, c, 1, V) → (N, M, V)
            'frames': tc.mean((2, 3))[..., 0].numpy(),       # (N, M, G, c, T, 1) → (N, M, T)
            'map': tv.mean(2)[:, :, 0].numpy(),              # (N, M, G, 1, T, V) → (N, M, T, V)
            'weights': F.softmax(head.w.detach(), dim=0).numpy(),
        }
    return profiles
