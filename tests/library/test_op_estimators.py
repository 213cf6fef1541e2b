"""``parse_ops``: ``{op: spec}`` into ``{op: OpEstimator}``, a named (estimator, relaxed) pair that
unpacks like the plain pair, describes itself for logs and summarises itself for messages."""

import pytest

import surrogate
from surrogate.op_estimators import OpEstimator, describe, parse_ops, parse_spec, summary

SPECS = {
    "argmax": {"name": "perturbed", "samples": 8, "sigma": None},
    "sign": ("atan", True),
    "step": "sigmoid",
}


def test_parse_ops_gives_named_pairs_in_the_order_of_the_ops():
    parsed = parse_ops(SPECS, "test")
    assert list(parsed) == ["step", "sign", "argmax"]
    for choice in parsed.values():
        assert type(choice) is OpEstimator
    est, relaxed = parsed["sign"]
    assert (est, relaxed) == (surrogate.estimator("atan"), True)
    assert parsed["sign"].estimator is est and parsed["sign"].relaxed is True
    assert parsed["argmax"] == (surrogate.estimator("perturbed", samples=8), False)
    assert parse_spec("step", "sigmoid") == OpEstimator(surrogate.estimator("sigmoid"), False)


def test_describe_gives_the_name_every_parameter_and_relaxed_in_that_order():
    parsed = parse_ops(SPECS, "test")
    want = {
        "step": {"name": "sigmoid", "beta": 4.0, "relaxed": False},
        "sign": {"name": "atan", "alpha": 2.0, "relaxed": True},
        "argmax": {"name": "perturbed", "sigma": 1.0, "samples": 8, "relaxed": False},
    }
    for op, choice in parsed.items():
        assert list(choice.describe().items()) == list(want[op].items())
    assert describe(parsed) == want
    assert type(describe(parsed)["argmax"]["samples"]) is int


def test_summary_names_the_estimator_and_says_relaxed():
    parsed = parse_ops(SPECS, "test")
    assert parsed["sign"].summary() == "estimator('atan', alpha=2.0) (relaxed)"
    assert parsed["argmax"].summary() == "estimator('perturbed', sigma=1.0, samples=8)"
    assert summary(parsed) == (
        "step=estimator('sigmoid', beta=4.0), sign=estimator('atan', alpha=2.0) (relaxed), "
        "argmax=estimator('perturbed', sigma=1.0, samples=8)"
    )
    plain = {op: tuple(choice) for op, choice in parsed.items()}  # plain pairs read the same
    assert summary(plain) == summary(parsed) and describe(plain) == describe(parsed)


def test_an_op_estimator_is_a_spec_that_parses_to_itself():
    choice = OpEstimator(surrogate.estimator("tanh", beta=3.0), True)
    assert parse_ops({"round": choice}, "test") == {"round": choice}


@pytest.mark.parametrize("when", [(0, 0), (5, 2)])
def test_a_schedule_gives_op_estimators(when):
    sched = surrogate.EstimatorSchedule(
        {"sign": "atan"},
        {"sign": {"alpha": {"kind": "linear", "start": 1.0, "end": 3.0, "length": 4}}},
        1,
    )
    for estimators in (sched.at(*when), sched.final()):
        assert all(type(choice) is OpEstimator for choice in estimators.values())
