"""Data-parallel training over ``torch.distributed``: one small context object for every trainer.

``DistributedContext.from_environment()`` reads the variables that ``torchrun`` sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins the process group:
gloo for CPU training, NCCL for CUDA (one GPU per local rank). Without those variables (a plain
``python -m ...`` run) it is a one-process context whose collectives do nothing, so a trainer has
one code path. The trainers use it in the same way:

- every rank holds the same model, optimizer and RNG states (same seeds); every step draws the
  same *global* batch and each rank evaluates its part, ``batch[ctx.shard(len(batch))]``;
- the loss is the mean over the rank's part, and :meth:`average_gradients` averages the gradients
  over the ranks: with equal parts this is the gradient of the global batch's mean loss, so a run
  with ``p`` processes follows the one-process run up to rounding, whatever ``p``; a checkpoint
  therefore resumes at another world size (the global batch is what must match);
- only rank 0 (:attr:`is_main`) writes checkpoints, logs, plots and ``result.json``;
- BatchNorm layers take their batch statistics over the global batch after
  :meth:`sync_batchnorm` (``torch.nn.SyncBatchNorm`` on CUDA; on CPU, where that class does not
  run, the same statistics through the differentiable ``torch.distributed.nn`` all-reduce).

A global batch that does not divide by the world size is refused (:meth:`shard` raises
``ValueError``): no padding, since a padded or uneven split would change the loss. Faults end every
rank with the same error instead of a hang: :meth:`check` all-reduces an ok-flag (a rank that found
bad data says so, and every rank raises :class:`RankFailure` naming it), non-finite gradients are
caught inside :meth:`average_gradients` at no extra cost (a NaN survives the sum, so every rank
sees it), and the process group has a timeout (``PDESOLVE_DIST_TIMEOUT`` seconds, default 300)
after which a collective that waits for a crashed rank fails; ``torchrun`` itself also stops the
other workers when one exits with an error.

>>> ctx = DistributedContext.from_environment()  # no torchrun here: one process
>>> ctx.rank, ctx.world_size, ctx.is_main
(0, 1, True)
>>> ctx.shard(8)
slice(0, 8, None)
>>> ctx.check(True, "data are finite")
>>> import torch
>>> net = torch.nn.Linear(2, 1)
>>> net(torch.ones(1, 2)).sum().backward()
>>> ctx.average_gradients(net.parameters())
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "RankFailure"]

#: seconds a collective waits for the other ranks before failing (overridden by the env variable)
DEFAULT_TIMEOUT = 300.0


class RankFailure(RuntimeError):
    """Raised on every rank when any rank reported a failure (the message names the ranks)."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a data-parallel run (see the module docstring).

    Attributes
    ----------
    rank, world_size, local_rank
        As set by ``torchrun`` (0, 1, 0 without it).
    device
        The torch device of this rank: ``cpu`` or ``cuda:<local_rank>``.
    backend
        ``"gloo"`` or ``"nccl"`` when a process group was joined, None for one process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @classmethod
    def from_environment(
        cls, device: str | torch.device = "cpu", timeout: float | None = None
    ) -> DistributedContext:
        """Join the process group described by ``torchrun``'s variables (one process without).

        ``device="cuda"`` (or ``"cuda:k"``: the index is replaced by the local rank) gives NCCL
        and one GPU per local rank; a CPU device gives gloo. ``timeout`` (seconds) bounds every
        collective; the default is ``PDESOLVE_DIST_TIMEOUT`` or 300. An already initialised
        default process group is reused.
        """
        kind = torch.device(device).type
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {str(device)!r}")
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as exc:
            raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK are not integers: {exc}") from exc
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"RANK={rank} and WORLD_SIZE={world} do not describe a process group")
        if kind == "cuda":
            if not torch.cuda.is_available():
                raise ValueError("device='cuda' but torch sees no CUDA device on this machine")
            if local >= torch.cuda.device_count():
                raise ValueError(
                    f"LOCAL_RANK={local} but this node has {torch.cuda.device_count()} GPU(s): "
                    "start at most one process per GPU"
                )
            dev = torch.device("cuda", local)
            torch.cuda.set_device(dev)
        else:
            dev = torch.device("cpu")
        if world == 1:
            return cls(0, 1, 0, dev, None)
        backend = "nccl" if kind == "cuda" else "gloo"
        if dist.is_initialized():
            if dist.get_world_size() != world or dist.get_rank() != rank:
                raise RuntimeError("an initialised process group disagrees with RANK/WORLD_SIZE")
            return cls(rank, world, local, dev, dist.get_backend())
        if timeout is None:
            timeout = float(os.environ.get("PDESOLVE_DIST_TIMEOUT", DEFAULT_TIMEOUT))
        dist.init_process_group(
            backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout)
        )
        return cls(rank, world, local, dev, backend)

    # ------------------------------------------------------------------ queries
    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    def shard(self, n_global: int) -> slice:
        """This rank's contiguous part of ``n_global`` items (a global batch).

        Raises ``ValueError`` unless ``n_global`` divides by the world size (no padding: an
        uneven split would change the mean loss).

        >>> DistributedContext(rank=1, world_size=2).shard(6)
        slice(3, 6, None)
        """
        if n_global < self.world_size or n_global % self.world_size:
            raise ValueError(
                f"a global batch of {n_global} does not divide among {self.world_size} "
                f"processes; choose a batch size that is a multiple of {self.world_size}"
            )
        size = n_global // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)

    # ------------------------------------------------------------------ collectives
    def check(self, ok: bool, message: str) -> None:
        """Raise :class:`RankFailure` on every rank if ``ok`` is False on any rank.

        Collective: every rank must call it at the same point. The error names the failing
        ranks and their ``message`` (a one-process run raises with its own message).
        """
        if not self.is_distributed:
            if not ok:
                raise RankFailure(message)
            return
        flag = torch.tensor([0.0 if ok else 1.0], device=self.device)
        dist.all_reduce(flag)
        if flag.item() == 0:
            return
        self._fail(ok, message)

    def _fail(self, ok: bool, message: str) -> None:
        reports: list[Any] = [None] * self.world_size
        dist.all_gather_object(reports, None if ok else message)
        lines = [f"rank {r}: {m}" for r, m in enumerate(reports) if m is not None]
        if not lines:  # finite on every rank, not after the sum: an overflow
            raise RankFailure(f"{message}: finite on every rank, overflowed in the sum")
        count = f"{len(lines)} of {self.world_size} processes failed; "
        raise RankFailure(count + "; ".join(lines))

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average ``tensor`` over the ranks, in place; returns it."""
        if self.is_distributed:
            dist.all_reduce(tensor)
            tensor /= self.world_size
        return tensor

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter], what: str = "") -> None:
        """Average the ``.grad`` of ``parameters`` over the ranks (one all-reduce).

        Parameters without a gradient count as zero. Non-finite gradients on any rank raise
        :class:`RankFailure` on every rank, naming the ranks whose own gradients were not finite
        (``what`` is added to the message, e.g. the step). Collective.
        """
        params = [p for p in parameters if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        local_ok = bool(torch.isfinite(flat).all())
        if self.is_distributed:
            dist.all_reduce(flat)
            flat /= self.world_size
        if not bool(torch.isfinite(flat).all()):
            message = f"non-finite gradients{' ' + what if what else ''} (check the data)"
            if self.is_distributed:
                self._fail(local_ok, message)
            raise RankFailure(message)
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[offset : offset + n].view_as(g).clone()
            offset += n

    def sync_batchnorm(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` with its BatchNorm layers normalising over the global batch (in place).

        Parameters and buffers keep their names, so state dicts load either way. Nothing
        changes for one process.
        """
        if not self.is_distributed:
            return module
        if self.device.type == "cuda":
            return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
                synced = _CpuSyncBatchNorm(child.num_features, child.eps, child.momentum,
                                           child.affine, child.track_running_stats)  # fmt: skip
                ref = child.running_mean if child.running_mean is not None else child.weight
                if ref is not None:
                    synced.to(ref.device, ref.dtype)
                synced.load_state_dict(child.state_dict())
                synced.train(child.training)
                if child.affine:  # the same Parameter objects (an optimizer may hold them)
                    synced.weight, synced.bias = child.weight, child.bias
                setattr(module, name, synced)
            else:
                self.sync_batchnorm(child)
        return module

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """``obj`` of rank ``src`` on every rank (picklable objects)."""
        if not self.is_distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank (nothing for one process)."""
        if self.is_distributed:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def close(self) -> None:
        """Leave the process group (when this context joined one)."""
        if self.is_distributed and dist.is_initialized():
            dist.destroy_process_group()

    def __enter__(self) -> DistributedContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """A differentiable all-reduce (sum): the backward pass sums the gradients over the ranks."""
    import warnings

    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # deprecated in favour of a private module; same semantics
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(x)


class _CpuSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the inputs of all ranks (any dimension), for CPU process groups."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training or not self.track_running_stats) or not dist.is_initialized():
            return super().forward(x)
        axes = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        dist.all_reduce(count)
        mean = _all_reduce_sum(x.sum(axes)) / count  # two passes, as BatchNorm itself
        centred = x - mean.view(shape)
        var = _all_reduce_sum(centred.square().sum(axes)) / count
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum
                if m is None:  # cumulative average
                    m = 1 / int(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                unbiased = var.detach() * count / (count - 1).clamp_min(1)
                self.running_var.mul_(1 - m).add_(m * unbiased)
        y = centred / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y
