"""Reproducing activation functions (RAF; Liang, Lyu, Wang & Yang, arXiv 2101.04844) and friends.

A RAF builds each neuron's activation from a small dictionary of basic functions (``x``, ``x²``,
``sin``, a Gaussian, ReLU, ReLU³, a rational function), so a network can reproduce polynomials,
Fourier series and radial bases. Two realisations (docs/methods/raf.md):

* :class:`PartitionedRAF` (the PDE experiments): the width-``m`` pre-activation is split into
  contiguous slices, each passed through one fixed basis function; the *next* linear layer supplies
  the learnable combination. Computed slice-wise and concatenated (no writes into a zero tensor).
* :class:`LearnableRAF` (the representation experiments): per neuron ``j``
  ``σ_j(x) = a_j x + b_j x² + c_j sin(d_j x) + e_j exp(-x²/(2 f_j²))`` with learnable
  ``a … f`` (any subset of the four terms).

:func:`make_activation` builds any activation by name (``tanh``, ``sin``, ``relu``, ``relu3``,
``raf`` / a partition preset name such as ``poly_sin_gaussian``, ``raf_learnable``).

>>> import torch
>>> act = make_activation("raf", width=8, gaussian_width=0.5)
>>> act.sizes
(2, 2, 2, 2)
>>> x = torch.linspace(-1, 1, 8, dtype=torch.float64).repeat(3, 1)
>>> act(x).shape
torch.Size([3, 8])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "BASIS",
    "JETS",
    "PRESETS",
    "LearnableRAF",
    "PartitionedRAF",
    "Rational",
    "make_activation",
]

#: fixed basis functions of the partitioned RAF; "gaussian" takes its width ``s`` separately
BASIS: dict[str, Callable[[Tensor], Tensor]] = {
    "x": lambda x: x,
    "x2": lambda x: x * x,
    "sin": torch.sin,
    "cos": torch.cos,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "relu3": lambda x: torch.relu(x) ** 3,
}

def _relu3_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r = torch.relu(x)
    return r * r * r, 3.0 * r * r, 6.0 * r


def _tanh_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    t = torch.tanh(x)
    d1 = 1.0 - t * t
    return t, d1, -2.0 * t * d1


def _sin_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = torch.sin(x)
    return s, torch.cos(x), -s


def _cos_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    c = torch.cos(x)
    return c, -torch.sin(x), -c


def _sigmoid_parts(x: Tensor) -> tuple[Tensor, Tensor]:
    s = torch.sigmoid(x)
    return s, s * (1.0 - s)


def _sigmoid_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s, ds = _sigmoid_parts(x)
    return s, ds, ds * (1.0 - 2.0 * s)


def _silu_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s, ds = _sigmoid_parts(x)
    return x * s, s + x * ds, ds * (2.0 + x * (1.0 - 2.0 * s))


def _softplus_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s, ds = _sigmoid_parts(x)
    return nn.functional.softplus(x), s, ds


def _gelu_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    phi = torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return x * cdf, cdf + x * phi, (2.0 - x * x) * phi


#: ``(σ, σ', σ'')`` of the fixed element-wise functions, for the forward Laplacian
#: (:meth:`pdesolve.nn.mlp.MLP.jet`): a PINN's ``Δu`` in one forward pass instead of ``d + 1``
#: nested autograd passes
JETS: dict[str, Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]] = {
    "x": lambda x: (x, torch.ones_like(x), torch.zeros_like(x)),
    "x2": lambda x: (x * x, 2.0 * x, torch.full_like(x, 2.0)),
    "sin": _sin_jet,
    "cos": _cos_jet,
    "tanh": _tanh_jet,
    "sigmoid": _sigmoid_jet,
    "relu": lambda x: (torch.relu(x), (x > 0).to(x.dtype), torch.zeros_like(x)),
    "relu3": _relu3_jet,
    "gelu": _gelu_jet,
    "silu": _silu_jet,
    "softplus": _softplus_jet,
}


#: the partition presets of the official code's ``setting.py`` (basis per slice, in order)
PRESETS: dict[str, tuple[str, ...]] = {
    "poly": ("x", "x2"),
    "poly_relu": ("x", "x2", "relu"),
    "poly_relu3": ("x", "x2", "relu3"),
    "poly_sin": ("x", "x2", "sin"),
    "poly_sin_gaussian": ("x", "x2", "sin", "gaussian"),
    "poly_sin_gaussian_rational": ("x", "x2", "sin", "gaussian", "rational"),
    "rational": ("rational",),
}


class Rational(nn.Module):
    """A learnable degree-(3, 2) rational function ``P(x)/Q(x)`` (Boullé et al., 2020).

    Initialised to the best rational fit of ReLU on [-1, 1] used by Boullé et al.:
    ``P = 1.1915x³ + 1.5957x² + 0.5x + 0.0218``, ``Q = 2.383x² + 1`` (``Q`` stays positive as
    long as its ``x`` coefficient is small; it is written ``1 + |q1 x + q2 x²|`` to keep it so).

    >>> r = Rational()
    >>> x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    >>> r(x).detach().round(decimals=3)
    tensor([-0.0220,  0.0220,  0.9780], dtype=torch.float64)
    """

    def __init__(self) -> None:
        super().__init__()
        self.numerator = nn.Parameter(torch.tensor([0.0218, 0.5, 1.5957, 1.1915]))
        self.denominator = nn.Parameter(torch.tensor([0.0, 2.383]))

    def forward(self, x: Tensor) -> Tensor:
        p = self.numerator.to(x.dtype)
        q = self.denominator.to(x.dtype)
        num = p[0] + x * (p[1] + x * (p[2] + x * p[3]))
        den = 1.0 + torch.abs(x * (q[0] + x * q[1]))
        return num / den

    def derivatives(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(r, r', r'')`` in closed form (``|w|'' = 0`` away from the kink ``w = 0``)."""
        p = self.numerator.to(x.dtype)
        q = self.denominator.to(x.dtype)
        num = p[0] + x * (p[1] + x * (p[2] + x * p[3]))
        dnum = p[1] + x * (2.0 * p[2] + 3.0 * x * p[3])
        ddnum = 2.0 * p[2] + 6.0 * x * p[3]
        w = x * (q[0] + x * q[1])
        sign = torch.sign(w)
        den = 1.0 + torch.abs(w)
        dden = sign * (q[0] + 2.0 * x * q[1])
        ddden = sign * 2.0 * q[1]
        r = num / den
        dr = (dnum - r * dden) / den
        ddr = (ddnum - 2.0 * dr * dden - r * ddden) / den
        return r, dr, ddr


def _even_sizes(width: int, parts: int) -> tuple[int, ...]:
    """The official split: ``q = width // parts`` per slice, the last slice takes the rest."""
    q = width // parts
    return (q,) * (parts - 1) + (width - q * (parts - 1),)


class PartitionedRAF(nn.Module):
    """Neuron-partitioned RAF: contiguous slices of the width, one fixed basis function each.

    Parameters
    ----------
    width : int
        Number of neurons ``m`` (the size of the last input dimension).
    basis : str or sequence of str
        A preset name from :data:`PRESETS` or basis names from :data:`BASIS` plus ``"gaussian"``
        (``exp(-x²/(2 s²))``) and ``"rational"`` (a learnable :class:`Rational`).
    sizes : sequence of int, optional
        Slice sizes (sum = ``width``); default ``width // len(basis)`` each, the last slice taking
        the remainder (as in the official code).
    gaussian_width : float
        ``s`` of the Gaussian slice: 0.05 (smooth Poisson), 0.1 (singular), 0.5 (oscillatory) in
        the official code.

    Examples
    --------
    >>> act = PartitionedRAF(5, basis=("x", "x2", "gaussian"), gaussian_width=1.0)
    >>> act.sizes
    (1, 1, 3)
    >>> act(torch.full((1, 5), 2.0, dtype=torch.float64))
    tensor([[2.0000, 4.0000, 0.1353, 0.1353, 0.1353]], dtype=torch.float64)
    """

    def __init__(
        self,
        width: int,
        basis: str | Sequence[str] = "poly_sin_gaussian",
        sizes: Sequence[int] | None = None,
        gaussian_width: float = 0.05,
    ) -> None:
        super().__init__()
        names = PRESETS[basis] if isinstance(basis, str) and basis in PRESETS else basis
        if isinstance(names, str):
            raise ValueError(
                f"unknown RAF basis preset {basis!r}; presets: {', '.join(PRESETS)}; or pass a "
                f"list of basis names from {', '.join([*BASIS, 'gaussian', 'rational'])}"
            )
        names = tuple(names)
        known = {*BASIS, "gaussian", "rational"}
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise ValueError(
                f"unknown RAF basis function(s) {unknown or names!r}; known: {', '.join(known)}"
            )
        if int(width) < len(names):
            raise ValueError(f"width {width} is smaller than the number of basis functions")
        sizes = _even_sizes(int(width), len(names)) if sizes is None else tuple(map(int, sizes))
        if len(sizes) != len(names) or sum(sizes) != width or min(sizes) < 0:
            raise ValueError(
                f"sizes {sizes} must have one non-negative entry per basis function {names} "
                f"and sum to width {width}"
            )
        if not gaussian_width > 0:
            raise ValueError(f"gaussian_width must be positive, got {gaussian_width!r}")
        self.width = int(width)
        self.basis = names
        self.sizes = sizes
        self.gaussian_width = float(gaussian_width)
        self.rational = Rational() if "rational" in names else None

    def _basis(self, name: str, x: Tensor) -> Tensor:
        if name == "gaussian":
            return torch.exp(-(x * x) / (2.0 * self.gaussian_width**2))
        if name == "rational":
            assert self.rational is not None
            return self.rational(x)
        return BASIS[name](x)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.width:
            raise ValueError(f"expected last dimension {self.width}, got shape {tuple(x.shape)}")
        parts = torch.split(x, self.sizes, dim=-1)
        return torch.cat(
            [self._basis(n, p) for n, p in zip(self.basis, parts, strict=True)], dim=-1
        )

    def _basis_jet(self, name: str, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if name == "gaussian":
            inv = 1.0 / self.gaussian_width**2
            g = torch.exp(-0.5 * inv * x * x)
            dg = -inv * x * g
            return g, dg, inv * (inv * x * x - 1.0) * g
        if name == "rational":
            assert self.rational is not None
            return self.rational.derivatives(x)
        return JETS[name](x)

    def derivatives(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(σ(x), σ'(x), σ''(x))`` element-wise (the forward Laplacian of a network)."""
        if x.shape[-1] != self.width:
            raise ValueError(f"expected last dimension {self.width}, got shape {tuple(x.shape)}")
        parts = [self._basis_jet(n, p) for n, p in
                 zip(self.basis, torch.split(x, self.sizes, dim=-1), strict=True)]
        return tuple(torch.cat([j[k] for j in parts], dim=-1) for k in range(3))  # type: ignore

    def extra_repr(self) -> str:
        return f"basis={self.basis}, sizes={self.sizes}, gaussian_width={self.gaussian_width}"


# the image run of the official code (SIREN-style): the sine part starts as sin(30 x)
_LEARNABLE_INIT: dict[str, tuple[str, float, float]] = {
    "a": ("normal", 0.0, 0.1),  # x
    "b": ("normal", 1.0, 0.1),  # x²
    "c": ("normal", 2.0, 0.1),  # sin amplitude
    "d": ("normal", 30.0, 0.001),  # sin frequency
    "e": ("normal", 1.0, 0.1),  # Gaussian amplitude
    "f": ("uniform", 0.01, 0.05),  # Gaussian width
}
_TERM_PARAMS = {"x": ("a",), "x2": ("b",), "sin": ("c", "d"), "gaussian": ("e", "f")}


class LearnableRAF(nn.Module):
    """Per-neuron learnable RAF ``σ_j(x) = a_j x + b_j x² + c_j sin(d_j x) + e_j e^{-x²/(2f_j²)}``.

    Parameters
    ----------
    width : int
        Number of neurons; every coefficient has shape ``(width,)``.
    terms : sequence of str
        Which terms to use, a subset of ``("x", "x2", "sin", "gaussian")`` (the official audio run
        uses ``("sin", "gaussian")``).
    init : mapping, optional
        Per coefficient ``("normal", mean, std)`` or ``("uniform", low, high)``; defaults are the
        official image run's: a ~ N(0, 0.1), b ~ N(1, 0.1), c ~ N(2, 0.1), d ~ N(30, 0.001),
        e ~ N(1, 0.1), f ~ U(0.01, 0.05).
    generator : torch.Generator, optional
        For a seeded initialisation.

    Examples
    --------
    >>> act = LearnableRAF(3, init={"a": ("normal", 1.0, 0.0), "b": ("normal", 0.0, 0.0),
    ...                             "c": ("normal", 0.0, 0.0), "e": ("normal", 0.0, 0.0)})
    >>> act(torch.tensor([[1.0, -2.0, 3.0]])).detach()  # a = 1, everything else off: identity
    tensor([[ 1., -2.,  3.]])
    """

    def __init__(
        self,
        width: int,
        terms: Sequence[str] = ("x", "x2", "sin", "gaussian"),
        init: Mapping[str, Sequence[Any]] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        terms = tuple(terms)
        unknown = [t for t in terms if t not in _TERM_PARAMS]
        if not terms or unknown:
            raise ValueError(
                f"unknown learnable RAF term(s) {unknown or terms!r}; known: "
                f"{', '.join(_TERM_PARAMS)}"
            )
        spec = {**_LEARNABLE_INIT, **{k: tuple(v) for k, v in (init or {}).items()}}
        self.width = int(width)
        self.terms = terms
        for term in terms:
            for key in _TERM_PARAMS[term]:
                kind, p1, p2 = spec[key]
                value = torch.empty(self.width)
                if kind == "normal":
                    value.normal_(float(p1), float(p2), generator=generator)
                elif kind == "uniform":
                    value.uniform_(float(p1), float(p2), generator=generator)
                else:
                    raise ValueError(f"init kind for {key!r} must be normal or uniform, got {kind}")
                self.register_parameter(key, nn.Parameter(value))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.zeros((), dtype=x.dtype, device=x.device)
        if "x" in self.terms:
            out = out + self.a * x
        if "x2" in self.terms:
            out = out + self.b * x * x
        if "sin" in self.terms:
            out = out + self.c * torch.sin(self.d * x)
        if "gaussian" in self.terms:
            out = out + self.e * torch.exp(-(x * x) / (2.0 * self.f * self.f))
        return out

    def derivatives(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(σ_j(x), σ_j'(x), σ_j''(x))`` element-wise, differentiable in the coefficients."""
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        out, d1, d2 = zero, zero, zero
        if "x" in self.terms:
            out, d1 = out + self.a * x, d1 + self.a
        if "x2" in self.terms:
            out, d1, d2 = out + self.b * x * x, d1 + 2.0 * self.b * x, d2 + 2.0 * self.b
        if "sin" in self.terms:
            arg = self.d * x
            sin = torch.sin(arg)
            out = out + self.c * sin
            d1 = d1 + self.c * self.d * torch.cos(arg)
            d2 = d2 - self.c * self.d * self.d * sin
        if "gaussian" in self.terms:
            inv = 1.0 / (self.f * self.f)
            g = self.e * torch.exp(-0.5 * inv * x * x)
            out, d1, d2 = out + g, d1 - inv * x * g, d2 + inv * (inv * x * x - 1.0) * g
        shape = torch.broadcast_shapes(x.shape, out.shape)
        return out.expand(shape), d1.expand(shape), d2.expand(shape)

    def extra_repr(self) -> str:
        return f"width={self.width}, terms={self.terms}"


class _Elementwise(nn.Module):
    def __init__(self, name: str, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.name, self.fn = name, fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def derivatives(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(σ, σ', σ'')`` element-wise in closed form."""
        return JETS[self.name](x)

    def extra_repr(self) -> str:
        return self.name


#: element-wise activations by name (no width needed)
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "sin": torch.sin,
    "relu": torch.relu,
    "relu3": BASIS["relu3"],
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
    "softplus": nn.functional.softplus,
}


def make_activation(name: str, width: int | None = None, **options: Any) -> nn.Module:
    """The activation ``name`` as a module; RAF variants need ``width``.

    Names: :data:`ACTIVATIONS` (``tanh``, ``sigmoid``, ``sin``, ``relu``, ``relu3``, ...), ``raf``
    (partitioned, ``basis=`` preset, default ``poly_sin_gaussian``), any :data:`PRESETS` name (partitioned RAF with
    that basis), ``raf_learnable`` (:class:`LearnableRAF`). ``options`` go to the RAF constructor.

    >>> make_activation("relu3")(torch.tensor([-1.0, 2.0]))
    tensor([0., 8.])
    >>> make_activation("swish")
    Traceback (most recent call last):
    ...
    ValueError: unknown activation 'swish'; known: tanh, sigmoid, sin, relu, relu3, gelu, silu, softplus, raf, raf_learnable, poly, poly_relu, poly_relu3, poly_sin, poly_sin_gaussian, poly_sin_gaussian_rational, rational
    """  # noqa: E501
    key = str(name).lower()
    if key in ACTIVATIONS:
        if options:
            raise ValueError(f"activation {name!r} takes no options, got {sorted(options)}")
        return _Elementwise(key, ACTIVATIONS[key])
    if key in ("raf", "raf_learnable", *PRESETS):
        if width is None:
            raise ValueError(f"activation {name!r} needs the layer width")
        if key == "raf_learnable":
            return LearnableRAF(width, **options)
        if key != "raf":
            if "basis" in options:
                raise ValueError(f"activation {name!r} fixes the basis; use 'raf' with basis=...")
            options = {**options, "basis": key}
        return PartitionedRAF(width, **options)
    known = [*ACTIVATIONS, "raf", "raf_learnable", *PRESETS]
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(known)}")
