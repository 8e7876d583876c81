"""Data-parallel training across processes started by torchrun: the process group, and exact
evaluation.

`torchrun --nproc_per_node N main.py --config ...` sets RANK, WORLD_SIZE and LOCAL_RANK; without
them everything here is a no-op for one process. Evaluation gives every process a contiguous slice
of the test set (no sample repeated, none padded in) and gathers the scores back in dataset order.
"""

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    # where collective operations put their tensors (NCCL: this process's GPU)
    device: str = 'cpu'

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def active(self):
        return self.world_size > 1


def init_from_environment(use_cuda):
    """The process group of a torchrun launch (NCCL on GPUs, gloo on CPU), or a one-process
    context."""
    world_size = int(os.environ.get('WORLD_SIZE', 1))
    if world_size == 1:
        return Context()
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if use_cuda else 'gloo')
    return Context(
        dist.get_rank(), world_size, local_rank, f'cuda:{local_rank}' if use_cuda else 'cpu'
    )


def shutdown():
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(count, context):
    """This process's contiguous slice of range(count)."""
    return np.array_split(np.arange(count), context.world_size)[context.rank]


def gather_in_order(array, context):
    """Every process's array, concatenated in rank order (hence in dataset order for `shard`
    slices)."""
    if not context.active:
        return array
    parts = [None] * context.world_size
    dist.all_gather_object(parts, array)
    return np.concatenate(parts)


def gather_objects(value, context):
    """[value of process 0, value of process 1, ...] on every process."""
    if not context.active:
        return [value]
    parts = [None] * context.world_size
    dist.all_gather_object(parts, value)
    return parts


def any_over_processes(flag, context):
    """Whether `flag` holds on any process (so that every process takes the same branch)."""
    if not context.active:
        return bool(flag)
    total = torch.tensor([float(flag)], device=context.device)
    dist.all_reduce(total)
    return bool(total.item())


def broadcast(value, context):
    """Rank 0's value, on every process."""
    if not context.active:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def sum_over_processes(values, context):
    """{name: float} summed over the processes."""
    if not context.active:
        return values
    names = sorted(values)
    totals = torch.tensor(
        [float(values[n]) for n in names], dtype=torch.float64, device=context.device
    )
    dist.all_reduce(totals)
    return dict(zip(names, totals.cpu().tolist()))


def share_buffers(module, context):
    """Process 0's buffers (BatchNorm running statistics) on every process: DDP keeps parameters
    equal, but each process's last forward updates its own statistics, which evaluation and the
    checkpoint use."""
    if context.active:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
