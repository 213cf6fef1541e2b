"""The README's guarantees: memory saved for backward, torch.compile without graph breaks,
dtypes."""

import pytest
import torch

import surrogate

SMOOTH = ["sigmoid", "fast_sigmoid", "atan", "tanh", "triangle", "gaussian", "exponential", "swish"]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def saved_bytes_per_element(fn, x):
    """Bytes the autograd graph of ``fn(x)`` keeps for backward, per element of ``x``."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    out.sum().backward()
    for t in saved:  # the input once, never a copy of it
        assert t is x or t.data_ptr() != x.data_ptr()
    return sum(t.numel() * t.element_size() for t in saved) / x.numel()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["step", "sign", "round"])
def test_saved_bytes_scalar(op, dtype):
    x = torch.randn(1000, dtype=dtype, requires_grad=True)
    fn = getattr(surrogate, op)
    for name in ["none", "ste"]:
        assert saved_bytes_per_element(lambda t, n=name: fn(t, n), x) == 0
    assert saved_bytes_per_element(lambda t: fn(t, "clipped_ste"), x) <= 1
    for name in SMOOTH:
        assert saved_bytes_per_element(lambda t, n=name: fn(t, n), x) == x.element_size()


@pytest.mark.parametrize("name", ["softmax", "sparsemax", "gumbel", "perturbed"])
def test_saved_bytes_argmax_smooth_is_one_input(name):
    x = torch.randn(100, 10, requires_grad=True)
    assert saved_bytes_per_element(lambda t: surrogate.argmax(t, name), x) == x.element_size()


def test_saved_bytes_argmax_straight_through_is_zero():
    x = torch.randn(100, 10, requires_grad=True)
    for name in ["none", "ste"]:
        assert saved_bytes_per_element(lambda t, n=name: surrogate.argmax(t, n), x) == 0


def test_saved_tensors_are_not_kept_for_the_input_of_smooth_estimators_twice():
    x = torch.randn(1000, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        surrogate.sign(x, "atan")
    assert len(saved) == 1 and saved[0] is x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["step", "sign", "round", "argmax"])
def test_output_and_gradient_keep_the_input_dtype(op, dtype):
    names = surrogate.available(op)
    for name in names:
        x = torch.randn(8, 5, dtype=dtype, requires_grad=True)
        y = getattr(surrogate, op)(x, name)
        assert y.dtype == dtype
        y.backward(torch.randn_like(y))
        assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()


def _deterministic(op):
    """Every deterministic estimator of ``op``; relaxed ones only where they compile into the graph
    (torch >= 2.14; before, they run eagerly: see the test of that below)."""
    if op != "argmax":
        hard = [dict(estimator=n) for n in surrogate.available(op)]
        relaxed = [dict(estimator=n, relaxed=True) for n in ["sigmoid", "clipped_ste", "swish"]]
    else:
        hard = [
            dict(estimator="none"),
            dict(estimator="ste"),
            dict(estimator="softmax", tau=0.5),
            dict(estimator="sparsemax"),
            dict(estimator="gumbel", training=False),
            dict(estimator="reinmax", training=False, tau=2.0),
        ]
        relaxed = [dict(estimator="softmax", relaxed=True)]
    return hard + (relaxed if surrogate.functional.COMPILES_RELAXED else [])


@pytest.mark.slow
@pytest.mark.parametrize("op", ["step", "sign", "round", "argmax"])
def test_compile_fullgraph_equals_eager(op):
    """One graph holding every deterministic estimator of ``op``: no graph break, same numbers."""
    configs = _deterministic(op)
    fn = getattr(surrogate, op)

    def all_estimators(xs):
        return [fn(x, **config) for x, config in zip(xs, configs, strict=True)]

    torch.manual_seed(0)
    base = torch.randn(16, 7) * 2
    grads = [torch.randn(16, 7) for _ in configs]
    results = []
    for runner in (all_estimators, torch.compile(all_estimators, fullgraph=True)):
        xs = [base.clone().requires_grad_() for _ in configs]
        outs = runner(xs)
        torch.autograd.backward(outs, grads)
        results.append(([o.detach() for o in outs], [x.grad for x in xs]))
    (eager_out, eager_grad), (compiled_out, compiled_grad) = results
    for config, a, b in zip(configs, eager_out, compiled_out, strict=True):
        if config.get("relaxed"):  # a smooth forward: the compiler may fuse it, to rounding
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=str(config))
        else:  # a hard forward: exact
            assert torch.equal(a, b), config
    for config, a, b in zip(configs, eager_grad, compiled_grad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=str(config))


@pytest.mark.slow
def test_compile_fullgraph_of_modules_in_a_model():
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 8), surrogate.Sign("atan"), torch.nn.Linear(8, 8),
        surrogate.Step("sigmoid", beta=8.0), torch.nn.Linear(8, 6), surrogate.ArgMax("softmax"),
    )  # fmt: skip
    x = torch.randn(5, 6)
    compiled = torch.compile(model, fullgraph=True)
    eager_out = model(x)
    eager_out.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled_out = compiled(x)
    compiled_out.square().sum().backward()
    assert torch.equal(eager_out, compiled_out)
    for a, p in zip(eager_grads, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-6)


def test_relaxed_ops_run_eagerly_under_torch_compile_where_it_drops_their_gradient(monkeypatch):
    """Before torch 2.14 (seen on 2.11: all zeros) a relaxed op leaves the compiled graph and runs
    eagerly; its gradient is then the eager one, the bump."""
    eager_calls = []
    run_eagerly = surrogate.functional._apply_eagerly

    @torch.compiler.disable
    def counted(*args):
        eager_calls.append(args[1].name)
        return run_eagerly(*args)

    monkeypatch.setattr(surrogate.functional, "COMPILES_RELAXED", False)
    monkeypatch.setattr(surrogate.functional, "_apply_eagerly", counted)
    torch._dynamo.reset()
    torch.manual_seed(0)
    x0, g = torch.randn(16, 7) * 2, torch.randn(16, 7)
    model = torch.nn.Sequential(torch.nn.Identity(), surrogate.Step("sigmoid", relaxed=True))
    grads = []
    for fn in (model, torch.compile(model)):  # not fullgraph: the relaxed op is a graph break
        x = x0.clone().requires_grad_()
        fn(x).backward(g)
        grads.append(x.grad)
    assert eager_calls == ["step"]
    s = torch.sigmoid(4 * x0)
    torch.testing.assert_close(grads[0], g * 4 * s * (1 - s))
    torch.testing.assert_close(grads[1], grads[0])
    torch._dynamo.reset()
    with pytest.raises(Exception, match="disable"):  # fullgraph=True refuses the graph break
        torch.compile(model, fullgraph=True)(x0.clone().requires_grad_())
    torch._dynamo.reset()
