"""Output folders of training runs: a run is resumed explicitly or the folder is refused.

Every trainer checks its ``--out`` before any work with :func:`claim_folder`: a missing or empty
folder starts a run; a folder that already holds one is refused (one line: pass ``--resume`` or
choose another folder), so nothing a user ran is overwritten or mixed; ``--resume`` needs the
folder's checkpoint. :func:`resumed_config` then takes the checkpoint's options and refuses every
asked option that differs from them, except the few a resume may change (how long to train, the
device), which it names. Logs are rewritten whole from the checkpoint's history
(:func:`pdesolve.io.write_csv`), never appended to.

>>> import tempfile
>>> out = Path(tempfile.mkdtemp()) / "run"
>>> claim_folder(out, resume=False)
False
>>> resumed_config({"lr": 0.1, "epochs": 2}, {"epochs": 5}, may_change=("epochs",))
{'lr': 0.1, 'epochs': 5}
>>> try:
...     resumed_config({"lr": 0.1, "n": 8}, {"lr": 0.5, "n": 8}, may_change=("epochs",))
... except RunFolderError as exc:
...     print(exc)
--resume cannot change lr (the run has 0.1, asked 0.5): drop it, or train into a new folder
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pdesolve.io import write_csv  # the trainers' logs are written with it

__all__ = [
    "RunFolderError", "add_options", "claim_folder", "one_line_errors", "resumed_config",
    "write_csv",
]  # fmt: skip


class RunFolderError(ValueError):
    """An output folder or a resume that cannot be used (the message says why, in one line)."""


def claim_folder(
    out: str | os.PathLike, resume: bool, checkpoint: str = "checkpoint.pt",
    reusable: Iterable[str] = (),
) -> bool:  # fmt: skip
    """Check ``out`` before a run starts; True when the run resumes from ``out/checkpoint``.

    Without ``resume`` the folder must not exist, be empty, or hold only the entries named in
    ``reusable`` (e.g. a dataset the trainer validates itself); with ``resume`` it must hold
    ``checkpoint``. The folder (or the first existing parent) must be writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"output folder {str(out)!r} is a file")
    if resume:
        if not (out / checkpoint).is_file():
            raise RunFolderError(
                f"nothing to resume: {str(out / checkpoint)!r} does not exist "
                "(start the run without --resume)"
            )
    elif out.is_dir():
        held = sorted(p.name for p in out.iterdir() if p.name not in set(reusable))
        if held:
            shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
            raise RunFolderError(
                f"output folder {str(out)!r} already holds a run ({shown}): pass --resume to "
                "continue it, or choose another folder"
            )
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write to the output folder {str(out)!r} ({parent})")
    return resume


def resumed_config(
    saved: Mapping[str, Any], asked: Mapping[str, Any], may_change: Iterable[str]
) -> dict[str, Any]:
    """``saved`` with the ``may_change`` options of ``asked``; any other difference is an error.

    Options in ``asked`` equal to the saved ones are accepted; unknown options are an error.
    """
    may_change = set(may_change)
    unknown = sorted(set(asked) - set(saved) - may_change)
    if unknown:
        raise RunFolderError(f"unknown options {unknown}; known: {sorted(saved)}")
    changed = [k for k, v in asked.items() if k not in may_change and saved.get(k) != v]
    if changed:
        what = ", ".join(f"{k} (the run has {saved.get(k)!r}, asked {asked[k]!r})" for k in changed)
        one = "it" if len(changed) == 1 else "them"
        raise RunFolderError(
            f"--resume cannot change {what}: drop {one}, or train into a new folder"
        )
    return {**saved, **{k: v for k, v in asked.items() if k in may_change}}


def add_options(
    parser: argparse.ArgumentParser, defaults: Mapping[str, Any], helps: Mapping[str, str],
    choices: Mapping[str, Iterable[str]] | None = None, aliases: Mapping[str, str] | None = None,
) -> None:  # fmt: skip
    """One ``--key`` per entry of ``defaults`` (type from the default, default None = not given).

    Tuples of ints are written comma-separated (``--curriculum 16,16,32``); bools as 0/1.
    Every option must have a help text in ``helps``; ``aliases`` adds a second flag to a key
    (torchrun's own parser takes a bare ``--n`` for an abbreviation of its options).
    """
    choices, aliases = choices or {}, aliases or {}
    for key, value in defaults.items():
        if key not in helps:
            raise KeyError(f"option {key!r} has no help text")
        kind: Callable[[str], Any]
        if isinstance(value, bool):
            kind, shown = _flag, int(value)
        elif isinstance(value, tuple):
            kind, shown = _int_tuple, ",".join(map(str, value))
        elif value is None:
            kind, shown = str, "none"
        else:
            kind, shown = type(value), value
        flags = [f"--{key.replace('_', '-')}", *([aliases[key]] if key in aliases else [])]
        parser.add_argument(
            *flags, dest=key, type=kind, default=None,
            choices=list(choices[key]) if key in choices else None,
            help=f"{helps[key]} (default: {shown})",
        )  # fmt: skip


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"expected 0 or 1, got {text!r}")
    return text == "1"


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 16,32, got {text!r}") from None


def one_line_errors(run: Callable[[], Any]) -> Any:
    """Call ``run``; an error in options, folders or data ends the program with one line.

    Under torchrun rank 0 prints the errors that every rank meets alike; other ranks print only
    their own other errors. The process group, if any, is left.
    """
    import torch.distributed as dist

    from pdesolve.train.distributed import RankFailure

    try:
        return run()
    except (ValueError, FileNotFoundError, RankFailure) as exc:
        rank = int(os.environ.get("RANK", "0"))
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        elif not isinstance(exc, ValueError | RankFailure):
            print(f"error on rank {rank}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
