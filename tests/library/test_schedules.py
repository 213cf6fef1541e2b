"""Schedules of estimator parameters and the relaxed phase (``surrogate.schedules``).

The values are held to float64 references written from the formulas (mpmath at 30 digits), the
gradients through a scheduled module to ``surrogate.sign`` with the same parameter and to the
sigmoid bump 2·β·σ(βx)·σ(−βx) written out in NumPy.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

import surrogate
from surrogate import EstimatorSchedule, Schedule

mpmath.mp.dps = 30
T = [0, 1, 2.5, 7, 10, 13, 1000]  # with length 10: t = 0, inside, t = length, t > length


def ref_value(kind, start, end=None, length=None, rate=None, t=0.0):
    """value(t) from the definitions, in 30-digit arithmetic."""
    t, s = mpmath.mpf(t), mpmath.mpf(start)
    if kind == "constant":
        return float(s)
    e = mpmath.mpf(end)
    if kind == "gumbel":
        return float(max(e, s * mpmath.e ** (-mpmath.mpf(rate) * t)))
    u = min(t / mpmath.mpf(length), 1)
    if kind == "linear":  # the chord from (0, start) to (length, end)
        return float((1 - u) * s + u * e)
    if kind == "cosine":  # half a cosine period from start down (or up) to end
        return float(e + (s - e) * (1 + mpmath.cos(mpmath.pi * u)) / 2)
    if kind == "exponential":  # geometric interpolation: log-linear
        return float(mpmath.e ** ((1 - u) * mpmath.log(s) + u * mpmath.log(e)))
    raise AssertionError(kind)


CASES = [
    dict(kind="constant", start=3.0),
    dict(kind="linear", start=1.0, end=8.0, length=10),
    dict(kind="linear", start=8.0, end=0.5, length=10),
    dict(kind="cosine", start=1.0, end=8.0, length=10),
    dict(kind="cosine", start=4.0, end=0.25, length=10),
    dict(kind="exponential", start=1.0, end=8.0, length=10),
    dict(kind="exponential", start=2.0, end=0.125, length=10),
    dict(kind="gumbel", start=1.0, end=0.5, rate=0.1),
    dict(kind="gumbel", start=3.0, end=0.2, rate=0.05),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kind']}-{c['start']}")
@pytest.mark.parametrize("t", T)
def test_value_matches_the_formula(case, t):
    assert Schedule(**case).value(t) == pytest.approx(ref_value(t=t, **case), rel=1e-14, abs=0)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kind']}-{c['start']}")
def test_value_starts_at_start_and_ends_at_end(case):
    sched = Schedule(**case)
    assert sched.value(0) == case["start"]
    end = case.get("end", case["start"])
    assert sched.final() == pytest.approx(end, rel=1e-15)
    assert sched.value(1e9) == pytest.approx(end, rel=1e-15)


def test_named_points():
    """Midpoints that identify each kind: arithmetic, the cosine's half-way and geometric."""
    assert Schedule("linear", 1.0, 8.0, length=20).value(10) == 4.5
    assert Schedule("cosine", 1.0, 8.0, length=20).value(10) == pytest.approx(4.5, rel=1e-15)
    assert Schedule("cosine", 1.0, 8.0, length=20).value(5) == pytest.approx(
        8 - 7 * (1 + math.sqrt(0.5)) / 2, rel=1e-15
    )
    assert Schedule("exponential", 1.0, 16.0, length=20).value(10) == pytest.approx(4.0)
    assert Schedule("exponential", 1.0, 16.0, length=20).value(5) == pytest.approx(2.0)


@pytest.mark.parametrize("r", [1e-5, 1e-4])
@pytest.mark.parametrize("t", [0, 1000, 10_000, 69_314, 69_315, 100_000, 10**6])
def test_gumbel_is_jangs_annealing(r, t):
    """τ = max(0.5, exp(−r·t)) of the global step (Jang, Gu & Poole 2017)."""
    sched = Schedule("gumbel", 1.0, 0.5, rate=r, unit="step")
    assert sched.value(t) == pytest.approx(max(0.5, math.exp(-r * t)), rel=1e-15)


BAD_SCHEDULES = [
    (dict(kind="lin", start=1.0), r"constant, linear, cosine, exponential, gumbel, got 'lin'"),
    (dict(kind=None, start=1.0), r"constant, linear, cosine, exponential, gumbel, got None"),
    (dict(kind="linear", start=1, end=2, length=3, unit="epochs"), r"epoch, step, got 'epochs'"),
    (dict(kind="constant", start=1.0, end=2.0), r"end must be None or equal to start.*2\.0"),
    (dict(kind="linear", start=1.0, length=3), r"end is required"),
    (dict(kind="linear", start=1.0, end=2.0), r"length is required"),
    (dict(kind="cosine", start=1.0, end=2.0, length=0), r"length must be > 0, got 0"),
    (dict(kind="linear", start=float("nan"), end=2.0, length=3), r"start.*finite.*nan"),
    (dict(kind="linear", start=True, end=2.0, length=3), r"start.*finite.*True"),
    (dict(kind="linear", start=1.0, end="8", length=3), r"end.*finite.*'8'"),
    (dict(kind="exponential", start=0.0, end=2.0, length=3), r"start must be > 0, got 0\.0"),
    (dict(kind="exponential", start=1.0, end=-2.0, length=3), r"end must be > 0, got -2\.0"),
    (dict(kind="gumbel", start=1.0, end=0.5), r"rate is required"),
    (dict(kind="gumbel", start=1.0, end=0.5, rate=-1.0), r"rate must be > 0, got -1\.0"),
    (dict(kind="gumbel", start=1.0, end=0.0, rate=1.0), r"end must be > 0, got 0\.0"),
    (dict(kind="gumbel", start=0.5, end=1.0, rate=1.0), r"start must be >= end.*0\.5"),
    (dict(kind="gumbel", start=1.0, end=0.5, rate=1.0, length=3), r"no length, got 3.*linear"),
    (dict(kind="linear", start=1, end=2, length=3, rate=1.0), r"no rate, got 1\.0.*gumbel"),
    (dict(kind="constant", start=1.0, length=3), r"no length, got 3"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SCHEDULES)
def test_bad_schedule_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Schedule(**fields)


@pytest.mark.parametrize("t", [-1, -0.5, float("nan"), "3", None, True])
def test_value_refuses_a_bad_time(t):
    with pytest.raises(ValueError, match=r"t must be a number >= 0, got " + repr(t)[:3]):
        Schedule("linear", 1.0, 2.0, length=3).value(t)


def test_schedule_is_frozen():
    with pytest.raises(AttributeError):
        Schedule("constant", 1.0).start = 2.0


# --- EstimatorSchedule ---------------------------------------------------------------------------


def lin(start, end, length=4, unit="epoch"):
    return Schedule("linear", start, end, length=length, unit=unit)


def test_all_applies_to_every_op_with_the_parameter():
    sched = EstimatorSchedule(
        {"step": "sigmoid", "sign": "tanh", "round": "atan"}, {"all": {"beta": lin(1.0, 9.0)}}
    )
    at = sched.at(0, 2)
    assert at["step"] == (surrogate.estimator("sigmoid", beta=5.0), False)
    assert at["sign"] == (surrogate.estimator("tanh", beta=5.0), False)
    assert at["round"] == (surrogate.estimator("atan"), False)  # atan has alpha, not beta
    assert list(at) == ["step", "sign", "round"]


def test_an_ops_own_entry_wins_over_all():
    sched = EstimatorSchedule(
        {"step": "sigmoid", "sign": ("sigmoid", False)},
        {"all": {"beta": lin(1.0, 9.0)}, "sign": {"beta": lin(2.0, 3.0)}},
    )
    at = sched.at(0, 2)
    assert at["step"][0].beta == 5.0
    assert at["sign"][0].beta == 2.5
    assert sched.values(0, 2) == {"step.beta": 5.0, "sign.beta": 2.5}


def test_all_with_no_estimator_having_the_parameter_is_refused():
    with pytest.raises(ValueError, match=r"'alpha'.*step=sigmoid\(beta\); sign=ste\(no param"):
        EstimatorSchedule({"step": "sigmoid", "sign": "ste"}, {"all": {"alpha": lin(1, 2)}})


def test_a_parameter_the_estimator_lacks_is_refused():
    with pytest.raises(ValueError, match=r"params\.step: sigmoid has no parameter 'alpha'.*beta"):
        EstimatorSchedule({"step": "sigmoid"}, {"step": {"alpha": lin(1, 2)}})
    with pytest.raises(ValueError, match=r"ste has no parameter 'beta'; it takes no parameters"):
        EstimatorSchedule({"step": "ste"}, {"step": {"beta": lin(1, 2)}})


def test_unknown_or_unnamed_ops_in_params_are_refused():
    with pytest.raises(ValueError, match=r"'sgn'; choose one of: all, step, sign, round, argmax"):
        EstimatorSchedule({"step": "sigmoid"}, {"sgn": {"beta": lin(1, 2)}})
    with pytest.raises(ValueError, match=r"'sign' has no estimator; the estimators name step"):
        EstimatorSchedule({"step": "sigmoid"}, {"sign": {"beta": lin(1, 2)}})
    with pytest.raises(ValueError, match=r"EstimatorSchedule.sign: unknown estimator 'sigm'"):
        EstimatorSchedule({"sign": "sigm"})
    with pytest.raises(TypeError, match=r"mapping"):
        EstimatorSchedule(["sign"])


@pytest.mark.parametrize(
    ("op", "est", "param", "sched", "message"),
    [  # out of range at the start, then at the end
        ("step", "sigmoid", "beta", lin(-1.0, 2.0), r"start value -1\.0.*beta must be .* > 0"),
        ("step", "sigmoid", "beta", lin(2.0, 0.0), r"end value 0\.0 .*beta must be .* > 0"),
        ("argmax", "reinmax", "tau", lin(0.5, 2.0), r"start value 0\.5.*tau must be .* >= 1"),
        ("argmax", "perturbed", "samples", lin(8, 0.4), r"end value 0\.4.*samples must be"),
    ],
)
def test_a_schedule_leaving_the_range_fails_at_construction(op, est, param, sched, message):
    with pytest.raises(ValueError, match=rf"params\.{op}\.{param}: .*{message}"):
        EstimatorSchedule({op: est}, {op: {param: sched}})


def test_a_mapping_of_fields_is_a_schedule():
    fields = {"kind": "cosine", "start": 1.0, "end": 3.0, "length": 2, "unit": "step"}
    sched = EstimatorSchedule({"step": "sigmoid"}, {"step": {"beta": fields}})
    assert sched.at(1, 0)["step"][0].beta == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"'lenght'; a Schedule takes kind, start, end, length"):
        EstimatorSchedule({"step": "sigmoid"}, {"step": {"beta": {"kind": "linear", "lenght": 3}}})
    with pytest.raises(ValueError, match=r"params\.step\.beta: .*start.*a Schedule takes"):
        EstimatorSchedule({"step": "sigmoid"}, {"step": {"beta": {"kind": "constant"}}})
    with pytest.raises(ValueError, match=r"params\.step\.beta: Schedule: kind .* got 'x'"):
        EstimatorSchedule({"step": "sigmoid"}, {"step": {"beta": {"kind": "x", "start": 1}}})
    with pytest.raises(ValueError, match=r"must be a Schedule or a mapping .* got 8\.0"):
        EstimatorSchedule({"step": "sigmoid"}, {"step": {"beta": 8.0}})


def test_units_steps_and_epochs():
    sched = EstimatorSchedule(
        {"step": "sigmoid", "argmax": "softmax"},
        {"step": {"beta": lin(1.0, 9.0, unit="step")}, "argmax": {"tau": lin(1.0, 5.0)}},
    )
    assert sched.values(2, 0) == {"step.beta": 5.0, "argmax.tau": 1.0}
    assert sched.values(0, 2) == {"step.beta": 1.0, "argmax.tau": 3.0}
    assert sched.values(100, 100) == {"step.beta": 9.0, "argmax.tau": 5.0}


def test_an_integer_parameter_takes_the_value_rounded_half_up():
    sched = EstimatorSchedule({"argmax": "perturbed"}, {"argmax": {"samples": lin(2, 4, 4)}})
    # value 2.5 at epoch 1, 3.0 at 2, 3.5 at 3
    assert [sched.at(0, e)["argmax"][0].samples for e in range(5)] == [2, 3, 3, 4, 4]
    assert sched.values(0, 1) == {"argmax.samples": 3.0}


def test_gumbel_temperature_follows_the_global_step():
    sched = EstimatorSchedule(
        {"argmax": "gumbel"},
        {"argmax": {"tau": Schedule("gumbel", 1.0, 0.5, rate=1e-4, unit="step")}},
    )
    for step in (0, 3000, 6931, 6932, 20_000):
        est, relaxed = sched.at(step, 7)["argmax"]
        assert est == surrogate.estimator("gumbel", tau=max(0.5, math.exp(-1e-4 * step)))
        assert relaxed is False


@pytest.mark.parametrize("k", [1, 3])
def test_relaxed_until_epoch_flips_at_exactly_k(k):
    sched = EstimatorSchedule({"step": "sigmoid", "sign": "atan"}, relaxed_until_epoch=k)
    for epoch in range(k + 2):
        want = epoch < k
        assert {op: r for op, (_, r) in sched.at(5, epoch).items()} == {
            "step": want,
            "sign": want,
        }
        assert sched.values(5, epoch) == {"relaxed": float(want)}
    assert sched.final() == {
        "step": (surrogate.estimator("sigmoid"), False),
        "sign": (surrogate.estimator("atan"), False),
    }


def test_an_op_relaxed_by_its_spec_stays_relaxed_after_the_phase():
    sched = EstimatorSchedule({"step": ("sigmoid", True), "sign": "atan"}, relaxed_until_epoch=1)
    assert sched.at(0, 1) == {
        "step": (surrogate.estimator("sigmoid"), True),
        "sign": (surrogate.estimator("atan"), False),
    }


@pytest.mark.parametrize(
    ("estimators", "message"),
    [
        ({"sign": "ste"}, r"'ste' has none; choose one of: clipped_ste, sigmoid, fast_sigmoid"),
        ({"argmax": "reinmax"}, r"'reinmax' has none; choose one of: softmax, gumbel, sparsemax"),
        ({"step": surrogate.estimator(lambda r: torch.ones_like(r))}, r"'custom' has none"),
    ],
)
def test_relaxed_phase_needs_relaxable_estimators(estimators, message):
    with pytest.raises(ValueError, match=r"relaxed_until_epoch: relaxed .*" + message):
        EstimatorSchedule(estimators, relaxed_until_epoch=2)


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_relaxed_until_epoch_must_be_a_positive_int(k):
    with pytest.raises(ValueError, match=r"relaxed_until_epoch must be None or an int >= 1, got"):
        EstimatorSchedule({"step": "sigmoid"}, relaxed_until_epoch=k)


@pytest.mark.parametrize(
    ("step", "epoch", "bad"),
    [(-1, 0, "step"), (0, -1, "epoch"), (1.0, 0, "step"), (0, True, "epoch"), (None, 0, "step")],
)
def test_at_refuses_a_bad_step_or_epoch(step, epoch, bad):
    sched = EstimatorSchedule({"step": "sigmoid"}, {"step": {"beta": lin(1, 2)}})
    with pytest.raises(ValueError, match=rf"{bad} must be an int >= 0, got"):
        sched.at(step, epoch)


def test_final_and_is_constant():
    plain = EstimatorSchedule({"step": "sigmoid"})
    assert plain.is_constant and plain.final() == plain.at(0, 0) == plain.at(99, 99)
    assert plain.values(0, 0) == {}
    relaxed = EstimatorSchedule({"step": "sigmoid"}, relaxed_until_epoch=1)
    assert not relaxed.is_constant
    sched = EstimatorSchedule(
        {"step": "sigmoid", "argmax": "softmax"},
        {"step": {"beta": Schedule("exponential", 1.0, 8.0, length=10)}},
    )
    assert not sched.is_constant
    assert sched.final() == {
        "step": (surrogate.estimator("sigmoid", beta=8.0), False),
        "argmax": (surrogate.estimator("softmax"), False),
    }


def sigmoid_sign_grad(x: np.ndarray, beta: float) -> np.ndarray:
    """d/dx of sign's sigmoid surrogate: J·p(x) = 2·β·σ(βx)·σ(−βx), float64."""
    return 2 * beta / (1 + np.exp(-beta * x)) / (1 + np.exp(beta * x))


def test_apply_sets_the_module_and_its_gradient():
    x = torch.linspace(-1.5, 1.5, 13, dtype=torch.float64)
    model = torch.nn.Sequential(torch.nn.Identity(), surrogate.Sign("sigmoid"))
    sched = EstimatorSchedule({"sign": "sigmoid"}, {"sign": {"beta": lin(1.0, 9.0, length=4)}})
    grads = []
    for epoch, beta in enumerate([1.0, 3.0, 5.0, 7.0, 9.0]):
        assert sched.apply(model, 10 * epoch, epoch) == 1
        assert sched.apply(model, 10 * epoch + 1, epoch) == 0  # already set
        assert model[1].estimator.beta == beta
        xg = x.clone().requires_grad_()
        model(xg).sum().backward()
        xf = x.clone().requires_grad_()
        surrogate.sign(xf, "sigmoid", beta=beta).sum().backward()
        torch.testing.assert_close(xg.grad, xf.grad, rtol=0, atol=0)
        np.testing.assert_allclose(xg.grad.numpy(), sigmoid_sign_grad(x.numpy(), beta), rtol=1e-13)
        grads.append(xg.grad)
    assert not torch.equal(grads[0], grads[-1])


def test_apply_flips_the_module_relaxed_at_epoch_k():
    x = torch.tensor([-0.3, -0.01, 0.2, 2.0], dtype=torch.float64)
    layer = surrogate.Sign("sigmoid", beta=2.0)
    sched = EstimatorSchedule({"sign": ("sigmoid", False)}, relaxed_until_epoch=2)
    sched.apply(layer, 0, 1)
    assert layer.relaxed
    torch.testing.assert_close(layer(x), 2 * torch.sigmoid(4.0 * x) - 1)  # default beta = 4
    sched.apply(layer, 0, 2)
    assert not layer.relaxed
    assert torch.equal(layer(x), torch.sign(x))


def test_at_drives_intercept():
    sched = EstimatorSchedule({"sign": "sigmoid"}, {"sign": {"beta": lin(1.0, 9.0, 4)}})
    x = torch.linspace(-1, 1, 7, dtype=torch.float64, requires_grad=True)
    with surrogate.intercept(**sched.at(0, 3)):
        torch.sign(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), sigmoid_sign_grad(x.detach().numpy(), 7.0))


def test_repr_names_the_estimators_and_schedules():
    text = repr(EstimatorSchedule({"step": "sigmoid"}, {"step": {"beta": lin(1, 2)}}, 3))
    assert "step=estimator('sigmoid', beta=4.0)" in text
    assert "kind='linear'" in text and "relaxed_until_epoch=3" in text
