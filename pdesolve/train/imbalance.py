"""Training classifiers on class-imbalanced data: Procrustean feature mixing and the baselines.

Procrustean training (Ye, Zhan, Chao, ICCV 2021) weakens the features of major-class samples by
mixing them with the features of other samples of the mini-batch, so that a network cannot fit
the major classes first; all classes then progress at a similar pace. :class:`FeatureMixing` is
the rule used here (docs/methods/procrustean.md says which details are ours): for a sample ``i``
of class ``c`` with ``n_c`` training samples, with probability

    p_c = p · ((n_c − n_min) / (n_max − n_min))^γ      (0 for the smallest class, p for the largest)

its feature vector ``h_i`` (the output of the named feature layer) is replaced by

    h̃_i = λ_i h_i + (1 − λ_i) h_j,   λ_i = λ_min + (1 − λ_min) |2b − 1|,  b ~ Beta(α, α),

where ``j ≠ i`` is a random partner in the batch (any class); the label stays ``y_i``. With
``α = 1`` the weight ``λ_i`` is uniform on ``[λ_min, 1]`` (``λ_min = 0.5`` by default, so a
sample's own features keep at least half the weight). Minor
classes (and every class of balanced data) are never mixed; with mixing off it is the identity.

Strategies of :func:`train_classifier` (``TrainConfig.strategy``):

* ``erm``: cross-entropy; ``reweight``: cross-entropy with class weights ``∝ n_c^(−power)``;
* ``resample``: class-balanced sampling with replacement (each class equally likely per draw);
* ``mixup``: input mixup (Zhang et al. 2018), ``λ ~ Beta(α, α)`` per batch, mixed labels;
* ``logit_adjust``: logit-adjusted cross-entropy (Menon et al., ICLR 2021), ``CE(f(x) + τ log π)``;
* ``procrustean``: cross-entropy with feature mixing; ``TrainConfig.mixing=True`` adds the mixing
  to any other strategy.

Every epoch logs the loss, the per-class accuracy on the (unmixed) training set, the per-class
mean norm of the loss gradient with respect to each sample's features (``‖∂ℓ_i/∂h_i‖``, the
quantity the paper's explanation rests on) and, when given, per-class validation accuracy. With
``out=`` each epoch writes a self-describing checkpoint (``pdesolve.nn.checkpoint``) that
:func:`train_classifier` resumes from and :func:`load_classifier` rebuilds a network from.

>>> import torch
>>> from pdesolve.nn.classifier import FeatureClassifier
>>> x, y, x_test, y_test = imbalanced_digits("step", ratio=10, seed=0)
>>> np.bincount(y).tolist()
[120, 120, 120, 120, 120, 12, 12, 12, 12, 12]
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> net = FeatureClassifier(64, 10, width=32)
>>> result = train_classifier(net, x, y, TrainConfig("procrustean", epochs=2), progress=False)
>>> len(result.history), len(result.history[-1]["train_accuracy"])
(2, 10)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pdesolve.nn.checkpoint import (
    capture_rng,
    check_device,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)

__all__ = [
    "STRATEGIES", "FeatureMixing", "TrainConfig", "TrainResult", "balanced_accuracy",
    "binary_metrics", "class_counts", "class_sizes", "imbalanced_digits", "load_classifier",
    "per_class_accuracy", "predict", "train_classifier",
]  # fmt: skip

STRATEGIES = ("erm", "reweight", "resample", "mixup", "logit_adjust", "procrustean")
IMBALANCE_KINDS = ("step", "long_tailed")


def class_counts(labels: Any, num_classes: int | None = None) -> np.ndarray:
    """Samples per class of integer ``labels`` in ``0..num_classes-1``, with clear errors.

    >>> class_counts([0, 1, 1, 2]).tolist()
    [1, 2, 1]
    """
    y = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1D array, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
    k = int(y.max()) + 1 if num_classes is None else int(num_classes)
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise ValueError(
            f"labels outside the class range 0..{k - 1}: {sorted(set(y[bad].tolist()))[:10]}"
        )
    counts = np.bincount(y, minlength=k)
    if (counts == 0).any():
        raise ValueError(
            f"classes {np.flatnonzero(counts == 0).tolist()} have no training samples "
            f"(counts {counts.tolist()}); every class needs at least one"
        )
    return counts


@dataclass(frozen=True)
class FeatureMixing:
    """The Procrustean feature-mixing rule (see the module docstring).

    ``probability`` is ``p`` (the largest class's mixing probability), ``power`` is ``γ``,
    ``alpha`` the Beta parameter and ``min_weight`` the smallest weight ``λ_min`` a mixed sample
    keeps of its own features.

    >>> mix = FeatureMixing(probability=0.5)
    >>> mix.class_probabilities([100, 100, 10, 10]).tolist()
    [0.5, 0.5, 0.0, 0.0]
    >>> mix.class_probabilities([100, 55, 10]).tolist()
    [0.5, 0.25, 0.0]
    """

    probability: float = 1.0
    alpha: float = 1.0
    power: float = 1.0
    min_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"mixing probability must be in [0, 1], got {self.probability}")
        if self.alpha <= 0 or self.power <= 0:
            raise ValueError(f"alpha and power must be positive, got {self.alpha}, {self.power}")
        if not 0.0 <= self.min_weight <= 1.0:
            raise ValueError(f"min_weight must be in [0, 1], got {self.min_weight}")

    def class_probabilities(self, counts: Sequence[int]) -> np.ndarray:
        """``p_c`` for each class from the training counts ``n_c`` (all 0 on balanced data)."""
        n = np.asarray(counts, dtype=float)
        spread = n.max() - n.min()
        if spread == 0:
            return np.zeros_like(n)
        return self.probability * ((n - n.min()) / spread) ** self.power

    def __call__(
        self, features: Tensor, labels: Tensor, class_prob: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Mixed features (same shape) and the boolean mask of the mixed samples.

        ``class_prob`` holds ``p_c`` per class (:meth:`class_probabilities`). Samples are chosen
        and paired with ``generator``; the weights ``λ`` come from it too when ``alpha = 1``
        (uniform ``b``), from torch's global generator otherwise.
        """
        b = features.shape[0]
        if b < 2:
            return features, torch.zeros(b, dtype=torch.bool, device=features.device)
        p = class_prob.to(features.device, features.dtype)[labels]
        where = generator.device if generator is not None else None
        chosen = torch.rand(b, generator=generator, device=where).to(features.device) < p
        order = torch.randperm(b, generator=generator, device=where).to(features.device)
        partner = torch.empty_like(order)
        partner[order] = order.roll(1)  # a random cyclic pairing: partner[i] != i
        if self.alpha == 1.0:
            beta = torch.rand(b, generator=generator, device=where)
        else:
            a = torch.tensor(float(self.alpha), device="cpu")  # torch's global CPU generator
            beta = torch.distributions.Beta(a, a).sample((b,))
        lam = self.min_weight + (1 - self.min_weight) * (2 * beta - 1).abs()
        lam = lam.to(features.device, features.dtype)
        lam = torch.where(chosen, lam, torch.ones_like(lam))
        lam = lam.reshape((b,) + (1,) * (features.ndim - 1))
        return lam * features + (1 - lam) * features[partner], chosen


class _FeatureHook:
    """Forward hook on the feature layer: records feature gradients, applies the mixing."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        try:
            module = model.get_submodule(layer)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n]
            raise ValueError(
                f"model has no feature layer {layer!r}; its submodules: {names[:20]}"
            ) from None
        self.mixing: FeatureMixing | None = None
        self.labels: Tensor | None = None
        self.class_prob: Tensor | None = None
        self.generator: torch.Generator | None = None
        self.record = False
        self.grad: Tensor | None = None
        self.mixed: Tensor | None = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: Any, output: Tensor) -> Tensor | None:
        if not isinstance(output, Tensor):
            raise TypeError(f"feature layer must output a tensor, got {type(output).__name__}")
        if self.record and output.requires_grad:
            output.register_hook(self._store)
        if self.mixing is not None and self.labels is not None:
            mixed, self.mixed = self.mixing(output, self.labels, self.class_prob, self.generator)
            return mixed
        return None

    def _store(self, grad: Tensor) -> None:
        self.grad = grad.detach()

    def remove(self) -> None:
        self.handle.remove()


@dataclass
class TrainConfig:
    """Settings of :func:`train_classifier` (plain values, stored in checkpoints).

    SGD with momentum (cosine learning-rate decay when ``schedule="cosine"``); ``mix_*`` set the
    :class:`FeatureMixing` rule and ``mix_until`` the fraction of epochs during which it is on.
    """

    strategy: str = "erm"
    epochs: int = 60
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    seed: int = 0
    feature_layer: str = "features"
    mixing: bool | None = None
    mix_probability: float = 1.0
    mix_alpha: float = 1.0
    mix_power: float = 1.0
    mix_min_weight: float = 0.0
    mix_until: float = 1.0
    mixup_alpha: float = 1.0
    tau: float = 1.0
    reweight_power: float = 1.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; known: cosine, constant")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(
                f"epochs, batch_size and lr must be positive, got {self.epochs}, "
                f"{self.batch_size}, {self.lr}"
            )
        if not 0.0 <= self.mix_until <= 1.0:
            raise ValueError(f"mix_until is a fraction of the epochs, got {self.mix_until}")
        if self.mixup_alpha <= 0:
            raise ValueError(f"mixup_alpha must be positive, got {self.mixup_alpha}")
        self.feature_mixing()  # validates

    def feature_mixing(self) -> FeatureMixing:
        return FeatureMixing(
            self.mix_probability, self.mix_alpha, self.mix_power, self.mix_min_weight
        )

    @property
    def uses_mixing(self) -> bool:
        return self.strategy == "procrustean" if self.mixing is None else bool(self.mixing)


@dataclass
class TrainResult:
    """What :func:`train_classifier` returns: the trained ``model``, the training ``counts`` and
    one ``history`` row per epoch (``epoch``, ``loss``, ``train_accuracy`` and ``grad_norm`` per
    class, ``val_accuracy`` per class and ``val_balanced_accuracy`` when validation data were
    given, ``mixed_fraction``); ``initial`` holds the per-class training accuracy before
    training."""

    model: nn.Module
    counts: list[int]
    history: list[dict[str, Any]] = field(default_factory=list)
    initial: dict[str, Any] = field(default_factory=dict)


def _as_tensors(x: Any, y: Any) -> tuple[Tensor, Tensor]:
    cpu = torch.device("cpu")  # host data arrive on the host; train_classifier moves them
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32,
                         device=x.device if isinstance(x, Tensor) else cpu)  # fmt: skip
    yt = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y,
                         device=y.device if isinstance(y, Tensor) else cpu).long()  # fmt: skip
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(f"{xt.shape[0]} samples but {yt.shape[0]} labels")
    if not torch.isfinite(xt).all():
        raise ValueError("inputs contain NaN or Inf")
    return xt, yt


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, x: Any, batch: int = 2048) -> np.ndarray:
    """Predicted classes (argmax of the logits) of ``x``, in eval mode, on the model's device."""
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32,
                         device=_model_device(model))  # fmt: skip
    was = model.training
    model.eval()
    out = torch.cat([model(xt[i : i + batch]).argmax(1) for i in range(0, len(xt), batch)])
    model.train(was)
    return out.cpu().numpy()


def per_class_accuracy(pred: Any, y: Any, num_classes: int) -> np.ndarray:
    """Accuracy on each class (NaN for a class absent from ``y``).

    >>> per_class_accuracy([0, 1, 1, 1], [0, 0, 1, 1], 2).tolist()
    [0.5, 1.0]
    """
    pred, y = np.asarray(pred), np.asarray(y)
    acc = np.full(num_classes, np.nan)
    for c in range(num_classes):
        m = y == c
        if m.any():
            acc[c] = float(np.mean(pred[m] == c))
    return acc


def balanced_accuracy(pred: Any, y: Any, num_classes: int) -> float:
    """Mean of the per-class accuracies (classes present in ``y``)."""
    return float(np.nanmean(per_class_accuracy(pred, y, num_classes)))


def binary_metrics(pred: Any, y: Any, positive: int = 1) -> dict[str, float]:
    """Recall, precision and F1 of the ``positive`` (minor) class, and balanced accuracy.

    >>> {k: round(v, 3) for k, v in binary_metrics([1, 1, 0, 0], [1, 0, 0, 0]).items()}
    {'recall': 1.0, 'precision': 0.5, 'f1': 0.667, 'balanced_accuracy': 0.833}
    """
    pred, y = np.asarray(pred) == positive, np.asarray(y) == positive
    tp = float(np.sum(pred & y))
    recall = tp / max(float(y.sum()), 1.0)
    precision = tp / float(pred.sum()) if pred.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    specificity = float(np.sum(~pred & ~y)) / max(float((~y).sum()), 1.0)
    return {"recall": recall, "precision": precision, "f1": f1,
            "balanced_accuracy": 0.5 * (recall + specificity)}  # fmt: skip


def _loss_fn(cfg: TrainConfig, counts: np.ndarray, device: torch.device) -> Any:
    n = torch.as_tensor(counts, dtype=torch.float32, device=device)
    if cfg.strategy == "reweight":
        w = n ** (-cfg.reweight_power)
        w = w * n.sum() / (w * n).sum()  # the mean weight over the training samples is 1
        return lambda logits, y: F.cross_entropy(logits, y, weight=w)
    if cfg.strategy == "logit_adjust":
        shift = cfg.tau * torch.log(n / n.sum())
        return lambda logits, y: F.cross_entropy(logits + shift, y)
    return F.cross_entropy


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def train_classifier(
    model: nn.Module,
    x: Any,
    y: Any,
    config: TrainConfig | None = None,
    *,
    num_classes: int | None = None,
    x_val: Any = None,
    y_val: Any = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    until: int | None = None,
    progress: bool = True,
    device: str | None = None,
) -> TrainResult:
    """Train ``model`` on ``(x, y)`` with ``config.strategy``; see the module docstring.

    ``model`` maps a batch of ``x`` to logits and has the submodule ``config.feature_layer``
    (features hooked for the gradient log and the mixing). ``out`` is a folder for
    ``checkpoint.pt`` (every epoch), ``model.pt`` and ``history.json`` (at the end);
    ``resume=True`` continues from its checkpoint, and an existing checkpoint is never
    overwritten without it; ``until`` stops after that epoch (to be resumed later). Seeded by
    ``config.seed``: batches and mixing draw from their own generators, and torch's global
    generator is seeded too (mixup's weights); the model's initialisation is the caller's.
    ``device`` ("cpu", "cuda"; None: where the model's parameters are) is where the model, the
    data and the epoch's bookkeeping live; batches and mixing draw from CPU generators, so a
    seed gives the same batches on every device.
    """
    cfg = config if config is not None else TrainConfig()
    if device is not None:
        check_device(device)
    dev = torch.device(device) if device is not None else _model_device(model)
    xt, yt = _as_tensors(x, y)
    counts = class_counts(yt, num_classes)
    model.to(dev)
    xt, yt = xt.to(dev), yt.to(dev)
    k = len(counts)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probe = model(xt[:2])
    model.train(was_training)
    if probe.ndim != 2 or probe.shape[1] != k:
        raise ValueError(f"model outputs shape {tuple(probe.shape)}; expected (N, {k}) logits")
    hook = _FeatureHook(model, cfg.feature_layer)
    has_val = x_val is not None
    if has_val:
        xv, yv = _as_tensors(x_val, y_val)
        xv, yv = xv.to(dev), yv.to(dev)
        if int(yv.min()) < 0 or int(yv.max()) >= k:
            raise ValueError(f"validation labels outside the class range 0..{k - 1}")
    out_dir = Path(out) if out is not None else None
    ckpt_path = out_dir / "checkpoint.pt" if out_dir is not None else None
    gen = torch.Generator().manual_seed(cfg.seed)
    # the mixing draws its own numbers, so batches are the same with and without mixing
    mix_gen = torch.Generator().manual_seed(cfg.seed + 7919)
    generators = {"batches": gen, "mixing": mix_gen}
    torch.manual_seed(cfg.seed)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)  # fmt: skip
    total = cfg.epochs

    def lr_at(epoch: int) -> float:
        if cfg.schedule == "constant":
            return cfg.lr
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * epoch / total))

    result = TrainResult(model=model, counts=counts.tolist())
    start = 0
    run_config = {"train": _config_dict(cfg), "counts": counts.tolist(),
                  "model": getattr(model, "config", None)}  # fmt: skip
    if ckpt_path is not None and ckpt_path.is_file():
        if not resume:
            hook.remove()
            raise FileExistsError(
                f"{str(ckpt_path)!r} exists; pass resume=True to continue it or choose another out"
            )
        ckpt = load_checkpoint(ckpt_path, map_location=dev)
        if (
            ckpt["config"]["train"] != run_config["train"]
            or ckpt["config"]["counts"] != run_config["counts"]
        ):
            hook.remove()
            raise ValueError(f"{str(ckpt_path)!r} was written with another config or data")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        restore_rng(ckpt["rng"], generators)
        result.history, result.initial = ckpt["history"]["epochs"], ckpt["history"]["initial"]
        start = ckpt["step"]
    loss_fn = _loss_fn(cfg, counts, dev)
    mixing = cfg.feature_mixing()
    class_prob = torch.as_tensor(mixing.class_probabilities(counts), dtype=torch.float32,
                                 device=dev)  # fmt: skip
    # batches are drawn on the CPU (the generators' device), then index the data on ``dev``
    cpu = torch.device("cpu")
    sample_w = (1.0 / torch.as_tensor(counts, dtype=torch.float64, device=cpu))[yt.cpu()]
    mix_epochs = round(cfg.mix_until * total) if cfg.uses_mixing else 0

    def train_accuracy() -> list[float]:
        return per_class_accuracy(predict(model, xt), yt.cpu().numpy(), k).tolist()

    if start == 0:
        result.initial = {"train_accuracy": train_accuracy()}
    from tqdm.auto import tqdm

    stop = total if until is None else max(start, min(int(until), total))
    bar = tqdm(range(start, stop), desc=f"{cfg.strategy}", disable=not progress, leave=False)
    model.train()
    try:
        for epoch in bar:
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch)
            if cfg.strategy == "resample":
                order = torch.multinomial(sample_w, len(yt), replacement=True, generator=gen)
            else:
                order = torch.randperm(len(yt), generator=gen, device=cpu)
            order = order.to(dev)
            hook.mixing = mixing if epoch < mix_epochs else None
            hook.class_prob, hook.generator, hook.record = class_prob, mix_gen, True
            grad_sum = torch.zeros(k, dtype=torch.float64, device=dev)
            grad_cnt, correct, per_class = (torch.zeros(k, device=dev) for _ in range(3))
            losses, mixed, seen = [], 0, 0
            for idx in order.split(cfg.batch_size):
                xb, yb = xt[idx], yt[idx]
                hook.labels, hook.grad, hook.mixed = yb, None, None
                if cfg.strategy == "mixup" and len(idx) > 1:
                    a = torch.tensor(float(cfg.mixup_alpha), device=cpu)
                    beta = torch.distributions.Beta(a, a)
                    lam = float(beta.sample())
                    perm = torch.randperm(len(idx), generator=gen, device=cpu).to(dev)
                    logits = model(lam * xb + (1 - lam) * xb[perm])
                    loss = lam * loss_fn(logits, yb) + (1 - lam) * loss_fn(logits, yb[perm])
                else:
                    logits = model(xb)
                    loss = loss_fn(logits, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()) * len(idx))
                correct.index_add_(0, yb, (logits.detach().argmax(1) == yb).float())
                per_class.index_add_(0, yb, torch.ones(len(idx), device=dev))
                if hook.grad is not None:  # per-sample gradient of its own loss: batch · ∂L/∂h_i
                    g = hook.grad.reshape(len(idx), -1).norm(dim=1).double() * len(idx)
                    grad_sum.index_add_(0, yb, g)
                    grad_cnt.index_add_(0, yb, torch.ones(len(idx), device=dev))
                if hook.mixed is not None:
                    mixed += int(hook.mixed.sum())
                seen += len(idx)
            hook.labels = None
            row: dict[str, Any] = {
                "epoch": epoch + 1, "lr": lr_at(epoch), "loss": sum(losses) / seen,
                "mixing": hook.mixing is not None, "mixed_fraction": mixed / seen,
                "train_accuracy": train_accuracy(),
                "batch_accuracy": (correct / per_class.clamp_min(1)).tolist(),
                "grad_norm": (grad_sum / grad_cnt.clamp_min(1)).tolist(),
            }  # fmt: skip
            if has_val:
                pv = predict(model, xv)
                row["val_accuracy"] = per_class_accuracy(pv, yv.cpu().numpy(), k).tolist()
                row["val_balanced_accuracy"] = balanced_accuracy(pv, yv.cpu().numpy(), k)
            result.history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}",
                            train_bal=f"{np.nanmean(row['train_accuracy']):.3f}")  # fmt: skip
            if ckpt_path is not None:
                history = {"epochs": result.history, "initial": result.initial}
                save_checkpoint(ckpt_path, step=epoch + 1, config=run_config, model=model,
                                optimizer=opt, rng=capture_rng(generators),
                                history=history)  # fmt: skip
    finally:
        hook.remove()
        bar.close()
    model.eval()
    if out_dir is not None and stop == total:
        save_checkpoint(out_dir / "model.pt", step=total, config=run_config, model=model)
        (out_dir / "history.json").write_text(
            json.dumps({"initial": result.initial, "epochs": result.history})
        )
    return result


def load_classifier(path: str | os.PathLike, map_location: Any = "cpu") -> nn.Module:
    """The trained :class:`~pdesolve.nn.classifier.FeatureClassifier` in a checkpoint or
    ``model.pt`` written by :func:`train_classifier` (rebuilt from the stored config), on the
    device ``map_location`` names."""
    from pdesolve.nn.checkpoint import target_device
    from pdesolve.nn.classifier import build_classifier

    ckpt = load_checkpoint(path, map_location=map_location)
    model_cfg = ckpt["config"].get("model")
    if model_cfg is None:
        raise ValueError(
            f"{str(path)!r} holds no model config (the network was not a FeatureClassifier); "
            "build the network yourself and load ckpt['model'] into it"
        )
    model = build_classifier(model_cfg)
    if target_device(map_location) is not None:
        model = model.to(target_device(map_location))
    model.load_state_dict(ckpt["model"])
    return model.eval()


def class_sizes(kind: str, ratio: float, n_max: int, num_classes: int) -> list[int]:
    """Training samples per class for an imbalance profile (largest / smallest ≈ ``ratio``).

    ``step``: the first half of the classes have ``n_max``, the rest ``n_max / ratio``;
    ``long_tailed``: ``n_c = n_max · ratio^(−c / (C − 1))`` (exponential decay).

    >>> class_sizes("step", 10, 130, 4), class_sizes("long_tailed", 10, 100, 3)
    ([130, 130, 13, 13], [100, 32, 10])
    """
    if kind not in IMBALANCE_KINDS:
        raise ValueError(f"unknown imbalance {kind!r}; known: {', '.join(IMBALANCE_KINDS)}")
    if ratio < 1 or n_max < 1 or num_classes < 2:
        raise ValueError(f"need ratio >= 1, n_max >= 1, num_classes >= 2; got {ratio}, {n_max}, "
                         f"{num_classes}")  # fmt: skip
    if kind == "step":
        major = num_classes // 2 + num_classes % 2
        sizes = [n_max] * major + [n_max / ratio] * (num_classes - major)
    else:
        sizes = [n_max * ratio ** (-c / (num_classes - 1)) for c in range(num_classes)]
    return [max(1, round(s)) for s in sizes]


def imbalanced_digits(
    kind: str, ratio: float, seed: int = 0, test_per_class: int = 50, n_max: int = 120
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits made imbalanced: ``(x_train, y_train, x_test, y_test)``.

    A balanced test set of ``test_per_class`` images per class is held out first (seeded);
    the training set takes :func:`class_sizes` images per class from the rest. Pixels are
    scaled to ``[0, 1]`` and flattened (64 features); classes keep their digit labels, so the
    digits 0-4 are the major classes of the step profile.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = data.data.astype(np.float32) / 16.0, data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    sizes = class_sizes(kind, ratio, n_max, 10)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) < test_per_class + sizes[c]:
            raise ValueError(f"digit {c} has {len(idx)} images, fewer than "
                             f"{test_per_class} test + {sizes[c]} training")  # fmt: skip
        test_idx.append(idx[:test_per_class])
        train_idx.append(idx[test_per_class : test_per_class + sizes[c]])
    tr, te = np.concatenate(train_idx), np.concatenate(test_idx)
    return x[tr], y[tr], x[te], y[te]
