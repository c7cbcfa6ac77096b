"""`Registry`: parameters added later stay out of a result's identity at their defaults."""

from __future__ import annotations

import pytest

from seater.registry import Registry


def test_identity_params_drop_added_parameters_only_at_their_defaults():
    reg = Registry("widget")
    reg.register("w", defaults={"a": 1, "new": False}, added=("new",))(lambda **kw: kw)
    assert reg.identity_params("w", reg.params("w")) == {"a": 1}
    assert reg.identity_params("w", reg.params("w", {"new": True})) == {"a": 1, "new": True}
    assert reg.identity_params("w", reg.params("w", {"a": 2})) == {"a": 2}


def test_an_added_parameter_needs_a_default():
    with pytest.raises(ValueError, match="added parameter"):
        Registry("widget").register("w", defaults={"a": 1}, added=("b",))


def test_an_unknown_name_in_an_empty_registry_says_how_entries_get_there():
    from seater.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match=r"known: \(none registered: modules register on import; bench\.registry\.load_all\(\)"):
        Registry("retriever").get("seater")


def test_every_bundled_builder_checks_its_defaults_and_its_ranges_without_data():
    """Suites call `Registry.check` on every tree point while loading: each builder must have one,
    accept its own defaults, and refuse an out-of-range value."""
    from bench.registry import BUILDER_MODULES, builders
    from seater.errors import ConfigError

    reg = builders()
    bad = {"balanced": {"threads": -1}, "greedy": {"workers": -2}, "hybrid": {"max_iter": 0},
           "constrained": {"n_init": 0}, "kmeans": {"niter": 0}, "random": {"workers": 0}, "rqvae": {"epochs": 0}}
    bundled = [e.name for e in reg if e.factory.__module__ in BUILDER_MODULES]  # not the tests' plugins
    assert sorted(bundled) == sorted(bad)
    for name in bundled:
        assert reg.get(name).check is not None, name
        reg.check(name, reg.params(name))
        with pytest.raises(ConfigError):
            reg.check(name, reg.params(name, bad[name]))
