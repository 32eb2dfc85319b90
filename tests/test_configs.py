"""Defaults live in one place: every registered solver and preconditioner has a Hydra config
whose keys and defaults equal its constructor's signature."""

from __future__ import annotations

import inspect

import pytest
from omegaconf import OmegaConf

import pdesolve
from pdesolve.resources import config_dir
from pdesolve.solvers import PRECONDITIONERS, SOLVERS

CONFIGS = config_dir()


def _defaults(factory) -> dict:
    out = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        assert p.default is not p.empty, f"{factory.__name__}.{p.name} has no default"
        out[p.name] = p.default
    return out


def _same(config_value, default) -> bool:
    if isinstance(config_value, dict) and not config_value and default is None:
        return True  # `options: {}` in a config is the `options=None` of a signature
    if isinstance(default, tuple):
        default = list(default)
    if isinstance(default, float) or isinstance(config_value, float):
        return default is not None and config_value is not None and (
            float(config_value) == pytest.approx(float(default), rel=1e-12)
        )
    return config_value == default


@pytest.mark.parametrize(("group", "registry"), [("solver", SOLVERS),
                                                  ("preconditioner", PRECONDITIONERS)])
def test_every_registered_name_has_a_config_equal_to_its_signature(group, registry):
    pdesolve.list_preconditioners()  # registers everything
    problems = []
    for name in registry.names():
        path = CONFIGS / group / f"{name}.yaml"
        if not path.is_file():
            problems.append(f"{group} {name!r} has no config {path.name}")
            continue
        config = OmegaConf.to_container(OmegaConf.load(path))
        if config.pop("name", None) != name:
            problems.append(f"{path.name}: name must be {name!r}")
        defaults = _defaults(registry.get(name))
        if set(config) != set(defaults):
            problems.append(
                f"{path.name}: keys {sorted(set(config) ^ set(defaults))} differ from the "
                "signature"
            )
        for key in set(config) & set(defaults):
            if not _same(config[key], defaults[key]):
                problems.append(f"{path.name}: {key} = {config[key]!r}, signature "
                                f"{defaults[key]!r}")  # fmt: skip
    assert not problems, "\n".join(problems)


def test_every_config_names_a_registered_entry():
    pdesolve.list_preconditioners()
    for group, registry in (("solver", SOLVERS), ("preconditioner", PRECONDITIONERS)):
        for path in sorted((CONFIGS / group).glob("*.yaml")):
            assert path.stem in registry, f"{group}/{path.name} names no registered one"
