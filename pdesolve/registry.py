"""One generic ``name -> factory`` registry, used for problems and solvers.

>>> reg = Registry("widget")
>>> @reg.register("square")
... def make_square(side=1.0):
...     return side * side
>>> reg.create("square", side=3.0)
9.0
>>> reg.names()
['square']

Entries may also be *declared* by name with the module that registers them
(:meth:`Registry.declare`): the module is imported when the name is first asked for, so that a
registry lists every entry without importing what they need (torch, for the learned ones).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(Generic[T]):
    """A plain mapping from names to factories (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._declared: dict[str, str] = {}
        self._referrals: list[tuple[Registry[Any], str]] = []

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name`` (names are unique)."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorator

    def declare(self, module: str, *names: str) -> None:
        """Declare ``names`` as registered by ``module``, imported on the first :meth:`get`.

        >>> reg = Registry("codec")
        >>> reg.declare("json", "json")  # the json module does not register it: an error
        >>> reg.names(), "json" in reg
        (['json'], True)
        >>> try:
        ...     reg.get("json")
        ... except RuntimeError as exc:
        ...     print(exc)
        module 'json' was declared to register codec 'json' but does not
        """
        for name in names:
            self._declared.setdefault(name, module)

    def _resolve(self, name: str) -> None:
        module = self._declared.get(name)
        if module is not None and name not in self._factories:
            importlib.import_module(module)
            if name not in self._factories:
                raise RuntimeError(f"module {module!r} was declared to register {self.kind} "
                                   f"{name!r} but does not")

    def refer(self, other: Registry[Any], hint: str) -> None:
        """Name the right place for ``other``'s names: asking this registry for one of them raises
        an error with ``hint`` (formatted with ``name``), e.g. which entry point to call instead.

        >>> tools, toys = Registry("tool"), Registry("toy")
        >>> _ = toys.register("yo-yo")(object)
        >>> tools.refer(toys, "look in the toy box")
        >>> try:
        ...     tools.get("yo-yo")
        ... except UnknownNameError as exc:
        ...     print(exc)
        'yo-yo' is a toy, not a tool: look in the toy box; known tools: (none)
        """
        self._referrals.append((other, hint))

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name`` (importing its module if it was declared)."""
        if isinstance(name, str):
            self._resolve(name)
        if not isinstance(name, str) or name not in self._factories:
            known = ", ".join(self.names()) or "(none)"
            for other, hint in self._referrals:
                if isinstance(name, str) and name in other:
                    raise UnknownNameError(
                        f"{name!r} is a {other.kind}, not a {self.kind}: "
                        f"{hint.format(name=name)}; known {self.kind}s: {known}"
                    )
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")
        return self._factories[name]

    def create(self, name: str, /, **params: Any) -> T:
        """Call the factory registered under ``name`` with ``params``.

        A parameter the factory does not take raises ``TypeError`` listing the ones it does.
        """
        factory = self.get(name)
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # builtins without a signature
            return factory(**params)
        accepted = [
            p.name for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]  # fmt: skip
        takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        unknown = [key for key in params if key not in accepted]
        if unknown and not takes_any:
            raise TypeError(
                f"{self.kind} {name!r} has no parameter {unknown[0]!r}; "
                f"its parameters: {', '.join(accepted)}"
            )
        return factory(**params)

    def names(self) -> list[str]:
        return sorted(set(self._factories) | set(self._declared))

    def __contains__(self, name: object) -> bool:
        return name in self._factories or name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
