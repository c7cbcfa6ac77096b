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


def test_a_whole_float_is_taken_for_an_integer_parameter():
    """threshold = 2e3 in a suite (TOML reads a float) or --param threshold=2e3 means 2000, as --sizes 2e4 does."""
    from seater.errors import ConfigError

    reg = Registry("widget")
    reg.register("w", defaults={"n": 1, "x": 0.5, "flag": False})(lambda **kw: kw)
    got = reg.params("w", {"n": 2e3, "x": 1.0})
    assert got == {"n": 2000, "x": 1.0, "flag": False} and type(got["n"]) is int
    for bad in ({"n": 2.5}, {"n": float("inf")}, {"flag": 1.0}):
        with pytest.raises(ConfigError, match="must be"):
            reg.params("w", bad)


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


@pytest.mark.parametrize("labels,params,message", [
    (["a", "a@x", "a@x"], {}, "listed twice"),
    (["a"], {"a@x": {"n": 1}}, "--param for a@x, which is not among the things a"),
    (["a@"], {}, "thing variant 'a@': give a label after @"),
    (["b@x"], {}, "unknown thing 'b'"),
    (["a", "a@x"], {"a@x": {"m": 1}}, "unknown parameter(s) m for thing 'a'"),
])
def test_variant_rows_are_checked_before_any_work(labels, params, message):
    from seater.errors import SeaterError

    reg = Registry("thing")
    reg.register("a", defaults={"n": 0})(lambda **kw: kw)
    reg.check_variants(["a", "a@x"], {"a@x": {"n": 2}}, "things")  # variants of one entry, each its own overrides
    with pytest.raises(SeaterError) as e:
        reg.check_variants(labels, params, "things")
    assert message in str(e.value)
