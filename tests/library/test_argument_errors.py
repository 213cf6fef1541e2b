"""Errors that name the bad argument: argmax's ``dim``, an estimator's op, the torch version guard.

Each refusal must name the argument, the bad value and the valid range or choices, and come
before any work is done.
"""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import surrogate
import surrogate.functional

# The catalogue as the README's two tables write it (not from `surrogate.available`): the smooth
# bumps apply to step, sign and round; softmax and the rest to argmax; none and ste to all four.
SHARED = {"none", "ste"}
BUMPS = {"clipped_ste", "sigmoid", "fast_sigmoid", "atan", "tanh", "triangle", "gaussian",
         "exponential", "swish"}  # fmt: skip
ARGMAX_ONLY = {"softmax", "gumbel", "reinmax", "sparsemax", "perturbed"}
FITS = {"step": SHARED | BUMPS, "sign": SHARED | BUMPS, "round": SHARED | BUMPS,
        "argmax": SHARED | ARGMAX_ONLY}  # fmt: skip
# Relaxed mode: P for the bumps; softmax, sparsemax and Gumbel-softmax for argmax.
SMOOTH = {
    "step": BUMPS,
    "sign": BUMPS,
    "round": BUMPS,
    "argmax": {"softmax", "gumbel", "sparsemax"},
}
MODULES = {"step": surrogate.Step, "sign": surrogate.Sign, "round": surrogate.Round,
           "argmax": surrogate.ArgMax}  # fmt: skip


def choices(message: str) -> set[str]:
    """The names an error message lists after 'choose one of: '."""
    found = re.search(r"choose one of: (.*)$", message)
    assert found, f"no choices listed in {message!r}"
    return {name.strip() for name in found.group(1).split(",")}


def reference_one_hot(x: torch.Tensor, dim: int) -> torch.Tensor:
    """One-hot of ``torch.argmax(x, dim)`` along ``dim``, in x's dtype."""
    if x.dim() == 0:
        return torch.ones_like(x)
    index = torch.argmax(x, dim)
    return F.one_hot(index, x.shape[dim]).movedim(-1, dim).to(x.dtype)


# --- argmax's dim, the function --------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "dim", "valid"),
    [
        ((4, 10), 5, "-2 to 1"),
        ((4, 10), 2, "-2 to 1"),
        ((4, 10), -3, "-2 to 1"),
        ((2, 3, 4), 3, "-3 to 2"),
        ((2, 3, 4), -4, "-3 to 2"),
        ((7,), 1, "-1 to 0"),
        ((), 1, "-1 to 0"),  # a 0-d input has dims -1 and 0, as for torch.argmax
        ((), -2, "-1 to 0"),
    ],
)
@pytest.mark.parametrize("name", ["ste", "softmax", "gumbel", "reinmax", "perturbed"])
def test_argmax_dim_out_of_range_names_dim_rank_and_range(monkeypatch, shape, dim, valid, name):
    def no_work(*args, **kwargs):
        raise AssertionError("the hard op ran before the bad dim was refused")

    monkeypatch.setattr(surrogate.functional.HardOpFunction, "apply", no_work)
    x = torch.randn(shape)
    with pytest.raises(IndexError) as err:
        surrogate.argmax(x, name, dim=dim)
    message = str(err.value)
    assert "surrogate.argmax" in message
    assert f"dim={dim} " in message and f"{len(shape)}-d input" in message
    assert f"shape {tuple(shape)}" in message and f"choose from {valid}" in message


def test_argmax_relaxed_dim_out_of_range_is_refused_the_same_way():
    with pytest.raises(IndexError, match=r"dim=2 .*2-d input.*choose from -2 to 1"):
        surrogate.argmax(torch.randn(4, 10), "softmax", dim=2, relaxed=True)


@pytest.mark.parametrize("dim", [1.0, "1", None, True, (0,)])
def test_argmax_dim_that_is_not_an_int_is_a_type_error_naming_dim(dim):
    with pytest.raises(TypeError) as err:
        surrogate.argmax(torch.randn(4, 10), "ste", dim=dim)
    assert "surrogate.argmax" in str(err.value)
    assert "dim must be an int" in str(err.value) and repr(dim) in str(err.value)


@pytest.mark.parametrize("shape", [(), (5,), (4, 10), (2, 3, 4)])
def test_argmax_every_valid_dim_negative_too_is_torch_argmax_one_hot(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    n = max(len(shape), 1)
    for dim in range(-n, n):
        expected = reference_one_hot(x, dim)
        assert torch.equal(surrogate.argmax(x, "ste", dim=dim), expected), dim
        assert torch.equal(surrogate.ArgMax("ste", dim=dim)(x), expected), dim


def test_argmax_negative_dim_gives_the_same_gradient_as_its_positive_twin():
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
    g = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(2))
    for negative, positive in [(-1, 2), (-2, 1), (-3, 0)]:
        grads = []
        for dim in (negative, positive):
            leaf = x.clone().requires_grad_()
            (surrogate.argmax(leaf, "softmax", dim=dim, tau=0.5) * g).sum().backward()
            grads.append(leaf.grad)
        assert torch.equal(grads[0], grads[1])


# --- argmax's dim, the module ----------------------------------------------------------------


def test_argmax_module_builds_with_any_int_dim_and_refuses_it_at_forward_naming_itself():
    layer = surrogate.ArgMax(dim=7)  # the rank is not known yet
    for training in (True, False):
        layer.train(training)
        with pytest.raises(IndexError) as err:
            layer(torch.randn(4, 10))
        message = str(err.value)
        assert message.startswith("ArgMax(") and "dim=7" in message.split(":")[0]
        assert "dim=7 is out of range for a 2-d input of shape (4, 10)" in message
        assert "choose from -2 to 1" in message


def test_argmax_module_in_a_model_names_the_module_and_the_input_rank():
    model = torch.nn.Sequential(torch.nn.Linear(10, 6), surrogate.ArgMax("softmax", dim=-3))
    with pytest.raises(IndexError) as err:
        model(torch.randn(4, 10))
    message = str(err.value)
    assert message.startswith("ArgMax(") and "'softmax'" in message
    assert "dim=-3 is out of range for a 2-d input of shape (4, 6); choose from -2 to 1" in message


@pytest.mark.parametrize("dim", [1.5, "last", None, False])
def test_argmax_module_dim_that_is_not_an_int_is_refused_at_construction(dim):
    with pytest.raises(TypeError) as err:
        surrogate.ArgMax("ste", dim=dim)
    assert "ArgMax" in str(err.value)
    assert "dim must be an int" in str(err.value) and repr(dim) in str(err.value)


# --- unknown or unfitting estimators list exactly the ones that fit the op --------------------


@pytest.mark.parametrize("op", list(MODULES))
def test_unknown_estimator_lists_exactly_the_op_s_estimators(op):
    x = torch.randn(4, 10)
    calls = {
        "module": lambda: MODULES[op]("nope"),
        "function": lambda: getattr(surrogate, op)(x, "nope"),
        "setter": lambda: setattr(MODULES[op](), "estimator", "nope"),
        "intercept": lambda: surrogate.intercept(**{op: "nope"}),
        "swap": lambda: surrogate.swap(torch.nn.Identity(), **{op: "nope"}),
    }
    for where, call in calls.items():
        with pytest.raises(ValueError) as err:
            call()
        message = str(err.value)
        assert "'nope'" in message and op in message, where
        assert choices(message) == FITS[op], where
    if op != "argmax":
        assert not choices(message) & ARGMAX_ONLY
    else:
        assert not choices(message) & BUMPS


@pytest.mark.parametrize("op", list(MODULES))
@pytest.mark.parametrize("spec", [42, None, 3.5])
def test_estimator_that_is_no_name_lists_exactly_the_op_s_estimators(op, spec):
    for call in (lambda: MODULES[op](spec), lambda: getattr(surrogate, op)(torch.randn(3), spec)):
        with pytest.raises(ValueError) as err:
            call()
        message = str(err.value)
        assert repr(spec) in message and op in message
        assert choices(message) == FITS[op]


@pytest.mark.parametrize(
    ("op", "name"),
    [("sign", "softmax"), ("step", "gumbel"), ("round", "perturbed"), ("argmax", "atan")],
)
def test_estimator_of_the_other_op_lists_exactly_the_op_s_estimators(op, name):
    for call in (lambda: MODULES[op](name), lambda: getattr(surrogate, op)(torch.randn(3), name)):
        with pytest.raises(ValueError) as err:
            call()
        assert repr(name) in str(err.value)
        assert choices(str(err.value)) == FITS[op]


@pytest.mark.parametrize(("op", "name"), [("sign", "ste"), ("argmax", "perturbed")])
def test_relaxed_without_a_smooth_forward_lists_exactly_the_op_s_smooth_estimators(op, name):
    with pytest.raises(ValueError) as err:
        MODULES[op](name, relaxed=True)
    assert repr(name) in str(err.value)
    assert choices(str(err.value)) == SMOOTH[op]


# --- the torch version guard -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "minimum", "expected"),
    [
        ("2.3.0", (2, 14), False),
        ("2.9.1", (2, 14), False),
        ("2.10.0", (2, 14), False),
        ("2.14.1", (2, 14), True),
        ("2.14.1+cu130", (2, 14), True),
        ("2.14.0a0+git", (2, 14), False),  # a pre-release of 2.14 counts as before it
        ("2.14.0a0+git", (2, 13), True),
        ("2.10.0", (2, 10), True),
        ("2.10.0", (2, 9), True),  # "2.10.0" < "2.9" as strings
        ("2.9.1", (2, 10), False),  # "2.9.1" > "2.10" as strings
        ("2.3.0", (2, 3), True),
    ],
)
def test_torch_at_least_compares_versions_not_strings(version, minimum, expected):
    assert surrogate.functional.torch_at_least(version, minimum) is expected


def test_compiles_relaxed_is_the_installed_torch_at_least_2_14():
    major, minor = (int(p) for p in re.match(r"(\d+)\.(\d+)", torch.__version__).groups())
    release = re.match(r"\d+\.\d+(\.\d+)*$", torch.__version__.split("+")[0]) is not None
    expected = (major, minor) > (2, 14) or ((major, minor) == (2, 14) and release)
    assert surrogate.functional.COMPILES_RELAXED is expected


def test_library_never_compares_a_version_as_a_string():
    library = Path(surrogate.__file__).parent
    version = r"(__version__|\bversion\b)"
    literal = r"""["'][0-9][^"']*["']"""
    compare = r"\s*(<|<=|>|>=)\s*"
    pattern = re.compile(rf"{version}{compare}{literal}|{literal}{compare}[\w.]*{version}")
    found = []
    for path in sorted(library.rglob("*.py")):
        if "training" in path.relative_to(library).parts:
            continue  # the training app is not the library
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(library)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
