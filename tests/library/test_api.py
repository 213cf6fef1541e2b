"""The Python API of the README (the library section) and its error messages."""

import io
import math
import pickle

import pytest
import torch

import surrogate

SCALAR = ["none", "ste", "clipped_ste", "sigmoid", "fast_sigmoid", "atan", "tanh", "triangle",
          "gaussian", "exponential", "swish"]  # fmt: skip
ARGMAX = ["none", "ste", "softmax", "gumbel", "reinmax", "sparsemax", "perturbed"]
PARAMS = {  # the catalogue's parameter names and defaults, as the README's tables write them
    "none": {}, "ste": {}, "clipped_ste": {"width": 1.0}, "sigmoid": {"beta": 4.0},
    "fast_sigmoid": {"beta": 2.0}, "atan": {"alpha": 2.0}, "tanh": {"beta": 2.0},
    "triangle": {"width": 1.0}, "gaussian": {"sigma": 1 / math.sqrt(2 * math.pi)},
    "exponential": {"alpha": 2.0}, "swish": {"beta": 2.0}, "softmax": {"tau": 1.0},
    "gumbel": {"tau": 1.0}, "reinmax": {"tau": 1.0}, "sparsemax": {"tau": 1.0},
    "perturbed": {"sigma": 1.0, "samples": 16},
}  # fmt: skip


@pytest.mark.parametrize("op", ["step", "sign", "round"])
def test_available_scalar(op):
    assert list(surrogate.available(op)) == SCALAR


def test_available_argmax():
    assert list(surrogate.available("argmax")) == ARGMAX


def test_available_with_no_op_lists_every_estimator_in_registration_order():
    assert list(surrogate.available()) == list(dict.fromkeys(SCALAR + ARGMAX))


def test_available_unknown_op():
    with pytest.raises(ValueError, match=r"'stp'.*step, sign, round, argmax"):
        surrogate.available("stp")


@pytest.mark.parametrize("name", surrogate.available())
def test_a_parameters_default_is_of_its_type(name):
    """An int default: the parameter takes integers only; a float default: any number in range.
    The training app reads a parameter's type off its default."""
    for key, default in surrogate.parameters(name).items():
        assert type(getattr(surrogate.estimator(name), key)) is type(default), key
        if type(default) is int:
            with pytest.raises(ValueError, match=f"{key} must be an integer"):
                surrogate.estimator(name, **{key: default + 0.5})
        else:
            assert type(default) is float, (key, default)
            value = getattr(surrogate.estimator(name, **{key: default + 0.5}), key)
            assert value == default + 0.5 and type(value) is float


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_names_and_defaults(name):
    est = surrogate.estimator(name)
    assert surrogate.parameters(name) == pytest.approx(PARAMS[name])
    for key, default in PARAMS[name].items():
        assert getattr(est, key) == pytest.approx(default)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_estimator_equal_by_value_and_picklable(name):
    a, b = surrogate.estimator(name), surrogate.estimator(name)
    assert a == b and hash(a) == hash(b)
    assert pickle.loads(pickle.dumps(a)) == a
    if PARAMS[name]:
        key = next(iter(PARAMS[name]))
        other = surrogate.estimator(name, **{key: 7})
        assert other != a and getattr(other, key) == 7


def test_estimator_object_passes_through_and_replaces_params():
    est = surrogate.estimator("sigmoid", beta=8.0)
    assert surrogate.estimator(est) is est
    assert surrogate.estimator(est, beta=2.0) == surrogate.estimator("sigmoid", beta=2.0)


def test_ops_accept_estimator_object_in_place_of_name():
    x = torch.randn(64, requires_grad=True)
    surrogate.step(x, surrogate.estimator("sigmoid", beta=8.0)).sum().backward()
    by_object = x.grad.clone()
    x.grad = None
    surrogate.step(x, "sigmoid", beta=8.0).sum().backward()
    assert torch.equal(by_object, x.grad)


@pytest.mark.parametrize(
    ("name", "key", "value", "valid"),
    [
        ("sigmoid", "beta", 0.0, "> 0"),
        ("sigmoid", "beta", -1.0, "> 0"),
        ("fast_sigmoid", "beta", float("nan"), "> 0"),
        ("atan", "alpha", -2.0, "> 0"),
        ("tanh", "beta", float("inf"), "> 0"),
        ("clipped_ste", "width", 0.0, "> 0"),
        ("triangle", "width", -0.5, "> 0"),
        ("gaussian", "sigma", 0.0, "> 0"),
        ("exponential", "alpha", "abc", "> 0"),
        ("swish", "beta", True, "> 0"),
        ("softmax", "tau", 0.0, "> 0"),
        ("gumbel", "tau", -1.0, "> 0"),
        ("reinmax", "tau", 0.5, ">= 1"),
        ("sparsemax", "tau", 0.0, "> 0"),
        ("perturbed", "sigma", 0.0, "> 0"),
        ("perturbed", "samples", 0, ">= 1"),
        ("perturbed", "samples", 2.5, "integer >= 1"),
    ],
)
def test_out_of_range_parameter_names_parameter_value_and_range(name, key, value, valid):
    with pytest.raises(ValueError) as err:
        surrogate.estimator(name, **{key: value})
    message = str(err.value)
    assert name in message and key in message and repr(value) in message and valid in message


def test_bad_parameter_refused_by_ops_and_modules_too():
    x = torch.randn(4)
    with pytest.raises(ValueError, match="beta"):
        surrogate.step(x, "sigmoid", beta=-1)
    with pytest.raises(ValueError, match="tau"):
        surrogate.ArgMax("reinmax", tau=0.9)
    with pytest.raises(ValueError, match="alpha"):
        surrogate.Sign("atan", alpha=0)


def test_unknown_estimator_lists_choices():
    with pytest.raises(ValueError) as err:
        surrogate.estimator("sigmod")
    assert "'sigmod'" in str(err.value)
    assert all(name in str(err.value) for name in SCALAR + ARGMAX)


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match=r"'alpha'.*beta"):
        surrogate.estimator("sigmoid", alpha=2.0)
    with pytest.raises(ValueError, match="'beta'"):
        surrogate.step(torch.zeros(2), "ste", beta=2.0)


@pytest.mark.parametrize(
    ("op", "name"),
    [("sign", "gumbel"), ("step", "softmax"), ("round", "perturbed"), ("argmax", "sigmoid")],
)
def test_estimator_that_does_not_apply_is_refused(op, name):
    valid = SCALAR if op != "argmax" else ARGMAX
    module = {"step": surrogate.Step, "sign": surrogate.Sign, "round": surrogate.Round,
              "argmax": surrogate.ArgMax}[op]  # fmt: skip
    function = getattr(surrogate, op)
    for build in (lambda: module(name), lambda: function(torch.zeros(2, 3), name)):
        with pytest.raises(ValueError) as err:
            build()
        assert repr(name) in str(err.value) and op in str(err.value)
        assert all(v in str(err.value) for v in valid)
    layer = module("ste")
    with pytest.raises(ValueError, match=repr(name)):
        layer.estimator = surrogate.estimator(name)
    assert layer.estimator == surrogate.estimator("ste")  # a refused swap changes nothing


@pytest.mark.parametrize("op", ["step", "sign", "round", "argmax"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.complex64])
def test_non_float_input_is_refused_with_the_dtypes_that_work(op, dtype):
    x = torch.ones(2, 3, dtype=dtype)
    for call in (lambda: getattr(surrogate, op)(x, "ste"),
                 lambda: {"step": surrogate.Step, "sign": surrogate.Sign, "round": surrogate.Round,
                          "argmax": surrogate.ArgMax}[op]("ste")(x)):  # fmt: skip
        with pytest.raises(TypeError, match=rf"surrogate {op}: .*float32.*got {dtype}"):
            call()


def test_relaxed_needs_a_smooth_estimator():
    with pytest.raises(ValueError, match=r"'ste'.*sigmoid"):
        surrogate.Step("ste", relaxed=True)
    with pytest.raises(ValueError, match=r"'perturbed'.*softmax"):
        surrogate.argmax(torch.zeros(2, 3), "perturbed", relaxed=True)
    layer = surrogate.Sign("ste")
    with pytest.raises(ValueError, match="'ste'"):
        layer.relaxed = True
    assert layer.relaxed is False


def test_module_estimator_is_settable_by_object_or_name():
    layer = surrogate.Sign("atan", alpha=2.0)
    assert layer.estimator == surrogate.estimator("atan", alpha=2.0)
    layer.estimator = surrogate.estimator("ste")
    assert layer.estimator == surrogate.estimator("ste")
    layer.estimator = "clipped_ste"
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0], requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]  # BNN's sign rule, 1[|x| <= 1]


def test_modules_equal_by_value_hash_by_identity():
    assert surrogate.Sign("atan", alpha=2.0) == surrogate.Sign("atan")
    assert surrogate.Sign("atan") != surrogate.Sign("atan", alpha=3.0)
    assert surrogate.Sign("atan") != surrogate.Step("atan")
    assert surrogate.ArgMax("softmax", dim=1) != surrogate.ArgMax("softmax", dim=-1)
    model = torch.nn.Sequential(surrogate.Sign("ste"), surrogate.Sign("ste"))
    assert len(list(model.named_modules())) == 3  # equal modules are still distinct in a model


def test_model_with_surrogate_modules_round_trips_through_torch_save():
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 6), surrogate.Sign("atan", alpha=3.0), surrogate.Step("sigmoid"),
        torch.nn.Linear(6, 6), surrogate.ArgMax("gumbel", dim=-1, tau=0.5),
    )  # fmt: skip
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    for a, b in zip(model, loaded, strict=True):
        if isinstance(a, surrogate.HardOp):
            assert a == b and a is not b
    x = torch.randn(3, 4)
    model.eval(), loaded.eval()
    assert torch.equal(model(x), loaded(x))


def test_argmax_function_takes_training_like_dropout():
    logits = torch.tensor([[0.0, 0.1, 0.0]]).repeat(500, 1)
    plain = surrogate.argmax(logits, "gumbel", training=False)
    assert torch.equal(plain, torch.nn.functional.one_hot(logits.argmax(-1), 3).float())
    sampled = surrogate.argmax(logits, "gumbel")  # training=True by default, like F.dropout
    assert (sampled.argmax(-1) != 1).any()


def test_argmax_module_follows_training_flag():
    layer = surrogate.ArgMax("reinmax", dim=-1)
    logits = torch.zeros(500, 4)
    assert layer.training and len(set(layer(logits).argmax(-1).tolist())) > 1
    layer.eval()
    assert set(layer(logits).argmax(-1).tolist()) == {0}


def test_custom_callable_bump():
    def p(r):
        return torch.exp(-r.abs())

    x = torch.linspace(-3, 3, 13, requires_grad=True)
    surrogate.sign(x, p).sum().backward()
    assert torch.allclose(x.grad, 2 * torch.exp(-x.detach().abs()))
    assert surrogate.estimator(p) == surrogate.estimator(p)
    with pytest.raises(ValueError, match="relaxed"):
        surrogate.step(x, p, relaxed=True)
    with pytest.raises(ValueError, match="argmax"):
        surrogate.argmax(x, p)


def test_public_names():
    for name in ["step", "sign", "round", "argmax", "estimator", "available", "Step", "Sign",
                 "Round", "ArgMax", "OpEstimator", "parse_ops"]:  # fmt: skip
        assert hasattr(surrogate, name)
        assert name in surrogate.__all__
    assert all(hasattr(surrogate, name) for name in surrogate.__all__)


@pytest.mark.parametrize("op", ["step", "sign", "round", "argmax"])
def test_unknown_estimator_for_an_op_lists_that_ops_choices_only(op):
    module = {"step": surrogate.Step, "sign": surrogate.Sign, "round": surrogate.Round,
              "argmax": surrogate.ArgMax}[op]  # fmt: skip
    with pytest.raises(ValueError) as err:
        module("nope")
    valid, other = (SCALAR, ARGMAX) if op != "argmax" else (ARGMAX, SCALAR)
    message = str(err.value)
    assert "'nope'" in message and op in message
    assert all(name in message for name in valid)
    assert not [name for name in other if name not in valid and f" {name}" in message]
