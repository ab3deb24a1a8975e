"""torchrun and DistributedDataParallel as a thin layer over the one training loop.

Without torchrun a run is world size 1: no process group, no DDP, no collective; every function here is
then the identity, so one process computes exactly what it always did. Under torchrun (RANK, WORLD_SIZE,
LOCAL_RANK in the environment) the ranks join a process group (gloo on CPU, nccl on GPU), each takes a
contiguous shard of every global batch (`shard`), and the loss is normalised by the global batch, so that
DDP's gradient average equals one process's gradient on the whole batch. BatchNorm then needs the global
batch's statistics too (`GlobalBatchNorm2d`): torch's own SyncBatchNorm refuses CPU tensors.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn


class World(NamedTuple):
    rank: int  # this process, 0 .. size - 1 (0 writes checkpoints, logs and the progress bar)
    size: int  # processes in the run, over all machines
    local_rank: int  # this process on its machine (its GPU)


def world() -> World:
    """This process's place from torchrun's environment; (0, 1, 0) without torchrun."""
    env = os.environ
    return World(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def local_size() -> int:
    """Processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE); 1 without torchrun."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def is_main() -> bool:
    """Rank 0, or the only process."""
    return world().rank == 0


def shard(n: int) -> slice:
    """This rank's contiguous part of n items (rank order, sizes differ by at most one); all n with one process."""
    rank, size, _ = world()
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def check_split(smallest: int, what: str) -> None:
    """Every rank needs part of every step: refuse more processes than the smallest global batch can feed."""
    size = world().size
    if size > smallest:
        raise ValueError(
            f"{size} processes but the smallest training step has only {smallest} {what if smallest > 1 else what[:-1]} to share "
            f"between them: run at most {smallest} (torchrun --nproc_per_node x --nnodes), or raise --batch-images"
        )


@contextlib.contextmanager
def session(device: torch.device) -> Iterator[torch.device]:
    """Join the process group for the duration (world size > 1); yields this rank's device."""
    w = world()
    if w.size == 1:
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", w.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
    try:
        yield device
        # Every rank done with every collective before any tears its group down: a rank that destroyed its
        # gloo group while another still talked to it was seen to abort ("terminate called ...", SIGABRT).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current GPU for nccl, the CPU for gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum over ranks (a new tensor, no gradient); the tensor itself with one process."""
    if world().size == 1:
        return tensor
    out = tensor.detach().to(_comm_device(), copy=True)
    dist.all_reduce(out)
    return out.to(tensor.device)


def barrier() -> None:
    """Wait for every rank (nothing with one process)."""
    if world().size > 1:
        dist.barrier()


def gather_rows(local: torch.Tensor, chunk: int = 512) -> Iterator[tuple[int, torch.Tensor]]:
    """Every rank's rows on every rank, a slab at a time: yields (global index of the first row, rows on the CPU).

    Rank r's rows follow rank r - 1's, as `shard` splits them. For the frozen features of a manifest: each
    rank encodes its shard of the distinct images and texts, then all hold all. Slabs of `chunk` rows
    (padded to the longest shard) keep memory bounded."""
    if world().size == 1:
        yield 0, local
        return
    device = _comm_device()
    counts = all_reduce_sum(torch.nn.functional.one_hot(torch.tensor(world().rank), world().size).mul(len(local))).tolist()
    firsts = [sum(counts[:r]) for r in range(len(counts))]
    for start in range(0, max(counts), chunk):
        slab = local.new_zeros((chunk, *local.shape[1:]), device=device)
        mine = local[start : start + chunk]
        slab[: len(mine)] = mine.to(device)
        slabs = [torch.empty_like(slab) for _ in counts]
        dist.all_gather(slabs, slab)
        for rank, got in enumerate(slabs):
            rows = max(0, min(chunk, counts[rank] - start))
            if rows:
                yield firsts[rank] + start, got[:rows].cpu()


def all_rows(local: torch.Tensor) -> torch.Tensor:
    """(n_rank, ...) on each rank -> (sum of n_rank, ...) in rank order on every rank; local itself with one process."""
    if world().size == 1:
        return local
    counts = all_reduce_sum(torch.tensor(len(local))).item()
    out = local.new_empty((int(counts), *local.shape[1:]), device="cpu")
    for first, rows in gather_rows(local):
        out[first : first + len(rows)] = rows
    return out


class _SumOverRanks(torch.autograd.Function):
    """all-reduce (sum) with a gradient: the backward sums every rank's gradient of the shared result."""

    @staticmethod
    def forward(ctx: object, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that normalises with the whole global batch's statistics when training under DDP.

    Per-channel sums and counts are all-reduced (differentiably: the backward all-reduces the gradient),
    mean first and then the squared deviations from it, as one process computes them. Evaluation uses the
    running statistics, like BatchNorm2d; the state dict is BatchNorm2d's, so checkpoints do not change.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world().size == 1:
            return super().forward(x)
        all_reduce = _SumOverRanks.apply
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # as autocast runs batch_norm: statistics in fp32
        # Sums in float64: a float32 sum over (N, H, W) loses the small variance of nearly constant channels,
        # which BatchNorm2d keeps (measured on a smoke batch: gradients 7e-5 off with float32 sums, 6e-8 as BatchNorm2d).
        dims, wide = (0, 2, 3), torch.float64
        count = all_reduce(x.new_tensor(float(x.numel() // x.shape[1]), dtype=wide))  # values per channel, global
        mean = (all_reduce(x.sum(dims, dtype=wide)) / count).to(x.dtype)  # (C,)
        centred = x - mean[None, :, None, None]
        var = (all_reduce(centred.square().sum(dims, dtype=wide)) / count).to(x.dtype)  # (C,) biased, as BatchNorm normalises
        with torch.no_grad():  # running statistics as BatchNorm2d keeps them (unbiased variance)
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * count / (count - 1).clamp(min=1), alpha=m)
        scale = self.weight * torch.rsqrt(var + self.eps)  # (C,)
        return centred * scale[None, :, None, None] + self.bias[None, :, None, None]


def wrap(module: nn.Module, find_unused: bool = False) -> nn.Module:
    """DDP around the module (BatchNorm on global statistics) with several processes; the module itself with one.

    find_unused: some parameters get no gradient (single-modality baselines zero one input)."""
    if world().size == 1:
        return module
    for bn in module.modules():
        if type(bn) is nn.BatchNorm2d:
            bn.__class__ = GlobalBatchNorm2d  # same parameters and buffers, global statistics
    return nn.parallel.DistributedDataParallel(module, find_unused_parameters=find_unused)
