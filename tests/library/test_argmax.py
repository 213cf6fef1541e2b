"""surrogate.argmax and surrogate.ArgMax against float64 references written from the README's
argmax table and forward conventions.

Expected values come from the ``ref_*`` helpers below (float64, written from the README's argmax
table, never from the library) or, for the stochastic estimators, from the laws the estimators
define: samples follow softmax(x), the gradient is a softmax Jacobian at a point consistent with
the sample, the perturbed gradient's mean is the derivative of a Gaussian CDF. The references use
nothing of ``surrogate``; each works along ``dim`` and returns float64:

    one-hot       1 at the first maximum along dim (found by comparing with the row maximum)
    softmax       exp(z − max z) / Σ exp(z − max z)
    J(p)·g        the explicit matrix diag(p) − p·pᵀ times g
    sparsemax     Euclidean projection onto the simplex: threshold by bisection, then exact on its
                  support (a different algorithm from the sort-based one of Martins & Astudillo
                  2016), checked against a brute-force enumeration of supports on tiny inputs
    reinmax       2·J(π₁)·g − ½·J(π₀)·g, π₀ = softmax(x), π₁ = (D + softmax(x/τ))/2
    perturbed     (1/(σM))·Σₘ Zₘ·⟨one-hot(argmax(x + σZₘ)), g⟩ for given draws Zₘ
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import surrogate

# --- float64 references, written from the README's argmax table ---------------------------------


def ref_one_hot(x: torch.Tensor, dim: int) -> torch.Tensor:
    """One-hot of the first maximum of ``x`` along ``dim`` (no NaN in ``x``), in float64."""
    z = x.detach().double().movedim(dim, -1)
    if z.numel() == 0:
        return torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    n = z.shape[-1]
    pos = torch.arange(n, device=z.device)
    first = torch.where(z == z.amax(-1, keepdim=True), pos, n).amin(-1, keepdim=True)
    return (pos == first).double().movedim(-1, dim)


def ref_softmax(z: torch.Tensor, dim: int) -> torch.Tensor:
    """exp(z − max z) / Σ exp(z − max z) along ``dim`` in float64 (differentiable)."""
    z = z.double()
    e = torch.exp(z - z.amax(dim, keepdim=True).detach())
    return e / e.sum(dim, keepdim=True)


def ref_softmax_jacobian_matrix(p: torch.Tensor) -> torch.Tensor:
    """J(p) = diag(p) − p·pᵀ over the last dim, as a (..., n, n) matrix."""
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def ref_jvp(jacobian: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """``jacobian`` (..., n, n) over ``dim`` moved last, applied to ``g`` along ``dim``."""
    gl = g.detach().double().movedim(dim, -1).unsqueeze(-1)
    return (jacobian @ gl).squeeze(-1).movedim(-1, dim)


def ref_softmax_jvp(p: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """J(p)·g along ``dim``."""
    return ref_jvp(ref_softmax_jacobian_matrix(p.detach().double().movedim(dim, -1)), g, dim)


def ref_sparsemax(z: torch.Tensor, dim: int) -> torch.Tensor:
    """Projection of ``z`` onto the probability simplex along ``dim``, in float64.

    The threshold t solves Σ max(z − t, 0) = 1; it is bracketed in [max z − 1, max z] and bisected,
    then made exact on the support S = {z > t}: t = (Σ_S z − 1)/|S|. Autograd through this gives the
    sparsemax Jacobian (the support is a constant mask).
    """
    z = z.double().movedim(dim, -1)
    with torch.no_grad():
        hi = z.amax(-1, keepdim=True)
        lo = hi - 1
        for _ in range(200):
            mid = (lo + hi) / 2
            enough = (z - mid).clamp_min(0).sum(-1, keepdim=True) >= 1
            lo, hi = torch.where(enough, mid, lo), torch.where(enough, hi, mid)
        support = z > lo
    t = (torch.where(support, z, 0.0).sum(-1, keepdim=True) - 1) / support.sum(-1, keepdim=True)
    return torch.where(support, z - t, torch.zeros_like(z)).clamp_min(0).movedim(-1, dim)


def ref_sparsemax_brute_force(z: torch.Tensor) -> torch.Tensor:
    """Simplex projection of a 1-D ``z`` by trying every support S: p = z − (Σ_S z − 1)/|S| on S,
    0 off S; the feasible (p >= 0) candidate nearest to ``z`` is the projection."""
    z = z.double()
    best = (math.inf, None)
    for k in range(1, len(z) + 1):
        for subset in itertools.combinations(range(len(z)), k):
            idx = list(subset)
            p = torch.zeros_like(z)
            p[idx] = z[idx] - (z[idx].sum() - 1) / k
            distance = float(((p - z) ** 2).sum())
            if (p >= 0).all() and distance < best[0]:
                best = (distance, p)
    return best[1]


def ref_sparsemax_jvp(x: torch.Tensor, g: torch.Tensor, dim: int, tau: float) -> torch.Tensor:
    """Jacobian of x ↦ sparsemax(x/τ) times g: (diag(s) − s·sᵀ/|S|)·g / τ, s the support mask."""
    s = (ref_sparsemax(x.detach().double() / tau, dim) > 0).double().movedim(dim, -1)
    matrix = torch.diag_embed(s) - s.unsqueeze(-1) * s.unsqueeze(-2) / s.sum(-1)[..., None, None]
    return ref_jvp(matrix, g, dim) / tau


def ref_reinmax_grad(x, g, sample, tau: float, dim: int) -> torch.Tensor:
    """ReinMax (Liu et al. 2023): 2·J(π₁)·g − ½·J(π₀)·g.

    π₀ = softmax(x), π₁ = (D + softmax(x/τ))/2, D the one-hot ``sample``.
    """
    x = x.detach().double()
    pi0 = ref_softmax(x, dim)
    pi1 = (sample.detach().double() + ref_softmax(x / tau, dim)) / 2
    return 2 * ref_softmax_jvp(pi1, g, dim) - ref_softmax_jvp(pi0, g, dim) / 2


def ref_grad(name: str, params: dict, x: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """The gradient of the deterministic estimators (gumbel, reinmax: eval mode), from the README's
    argmax table."""
    tau = params.get("tau", 1.0)
    x64 = x.detach().double()
    if name == "none":
        return torch.zeros_like(x64)
    if name == "ste":
        return g.detach().double()
    if name in ("softmax", "gumbel"):
        return ref_softmax_jvp(ref_softmax(x64 / tau, dim), g, dim) / tau
    if name == "sparsemax":
        return ref_sparsemax_jvp(x64, g, dim, tau)
    if name == "reinmax":
        return ref_reinmax_grad(x64, g, ref_one_hot(x64, dim), tau, dim)
    raise ValueError(name)


def ref_perturbed_grad(x, g, draws, sigma: float, dim: int) -> torch.Tensor:
    """(1/(σM))·Σₘ Zₘ·g[argmax(x + σZₘ)] for the given draws Zₘ.

    ``x`` is the logits in the precision the perturbed point x + σZₘ is formed in (the sample); the
    sum itself is taken in float64.
    """
    total = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    g64 = g.detach().double()
    for z in draws:
        hit = ref_one_hot(x + sigma * z, dim)
        total += z.double() * (hit * g64).sum(dim, keepdim=True)
    return total / (sigma * len(draws))


def ref_normal_pdf(t: float) -> float:
    return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def ref_normal_cdf(t: float) -> float:
    return 0.5 * (1 + math.erf(t / math.sqrt(2)))


# --- the library under test ------------------------------------------------------------------

ESTIMATORS = ("none", "ste", "softmax", "gumbel", "reinmax", "sparsemax", "perturbed")
STOCHASTIC = ("gumbel", "reinmax")  # sample in training, plain argmax in eval
SMOOTH = ("softmax", "gumbel", "reinmax", "sparsemax")  # gradient of a smooth map of x
NOT_RELAXABLE = ("none", "ste", "reinmax", "perturbed")
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
DIMS = (0, 1, -1)
INF, NAN = math.inf, math.nan

# Half inputs are computed in fp32 and rounded to half at the end: a few half ulps.
TOL = {
    torch.float16: {"rtol": 4e-3, "atol": 2e-3},
    torch.bfloat16: {"rtol": 3e-2, "atol": 1.6e-2},
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
}

GRAD_CASES = [
    ("none", {}),
    ("ste", {}),
    ("softmax", {}),
    ("softmax", {"tau": 0.5}),
    ("softmax", {"tau": 2.0}),
    ("gumbel", {}),
    ("gumbel", {"tau": 0.5}),
    ("gumbel", {"tau": 2.0}),
    ("reinmax", {}),
    ("reinmax", {"tau": 1.5}),
    ("reinmax", {"tau": 2.0}),
    ("sparsemax", {}),
    ("sparsemax", {"tau": 0.5}),
    ("sparsemax", {"tau": 2.0}),
]
MODULE_CASES = [
    *GRAD_CASES,
    ("perturbed", {}),
    ("perturbed", {"sigma": 0.5, "samples": 3}),
]


def case_id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def randn(*shape, seed=0, scale=1.0, dtype=torch.float64, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(device, dtype)


def run(x, name, g=None, dim=-1, *, training=True, relaxed=False, **params):
    """Forward (and backward with incoming gradient ``g``) of the argmax function on a leaf copy."""
    x = x.detach().requires_grad_(True)
    y = surrogate.argmax(x, name, dim, training=training, relaxed=relaxed, **params)
    if g is None:
        return y.detach(), None
    (grad,) = torch.autograd.grad(y, x, g)
    return y.detach(), grad


def eval_training(name):
    """The training flag under which ``name`` is deterministic (stochastic ones: eval)."""
    return name not in STOCHASTIC


def assert_close(actual, expected, dtype):
    assert actual.dtype == dtype
    torch.testing.assert_close(actual.double(), expected.to(actual.device), **TOL[dtype])


def assert_valid_one_hot(y, dim):
    assert ((y == 0) | (y == 1)).all()
    assert (y.sum(dim) == 1).all()


def chi_square(counts, probs):
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# --- the references themselves ------------------------------------------------------------------


def test_reference_sparsemax_is_the_simplex_projection():
    gen = torch.Generator().manual_seed(1)
    for n in (1, 2, 3, 4, 5):
        for scale in (0.1, 1.0, 3.0):
            for _ in range(6):
                z = scale * torch.randn(n, generator=gen, dtype=torch.float64)
                torch.testing.assert_close(
                    ref_sparsemax(z, -1), ref_sparsemax_brute_force(z), rtol=0, atol=1e-12
                )
    z = torch.tensor([[0.1, 0.9, 2.0], [0.0, 0.0, 0.0], [1.0, 0.5, -3.0]], dtype=torch.float64)
    expected = [[0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3], [0.75, 0.25, 0.0]]  # by hand
    torch.testing.assert_close(ref_sparsemax(z, -1), torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_reference_jacobians_match_autograd_of_the_reference_maps(tau, dim):
    x, g = randn(3, 6, seed=2, scale=1.5), randn(3, 6, seed=3)
    xt = (x / tau).requires_grad_(True)
    (expected,) = torch.autograd.grad(ref_softmax(xt, dim), xt, g)
    actual = ref_softmax_jvp(ref_softmax(xt.detach(), dim), g, dim)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    (expected,) = torch.autograd.grad(ref_sparsemax(xt, dim), xt, g)  # d/dz of sparsemax(z)
    actual = ref_sparsemax_jvp(x, g, dim, tau) * tau  # d/dx of sparsemax(x/τ), times τ
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_reference_one_hot_takes_the_first_maximum():
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0], [-INF, -INF, -INF, -INF]])
    assert ref_one_hot(x, -1).argmax(-1).tolist() == [1, 0, 0]
    assert ref_one_hot(x, 0)[:, 1].tolist() == [0, 1, 0]


def test_available_is_the_spec_table():
    assert set(surrogate.available("argmax")) == set(ESTIMATORS)


# --- 1. the forward: exact one-hot of the first maximum ---------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_forward_is_the_exact_one_hot(name, dim, dtype, device):
    normal = randn(4, 5, 6, seed=10, scale=2.0, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(11)
    ties = torch.randint(-2, 3, (4, 5, 6), generator=gen).to(device, dtype)  # many ties
    for x in (normal, ties):
        trainings = (False,) if name in STOCHASTIC else (True, False)
        for training in trainings:
            y, _ = run(x, name, dim=dim, training=training)
            assert y.dtype == dtype and y.device == x.device and y.shape == x.shape
            assert torch.equal(y, ref_one_hot(x, dim).to(device, dtype))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_forward_ties_pick_the_first_index(name):
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0], [-1.0, -2.0, -1.0, -3.0]])
    y, _ = run(x, name, training=eval_training(name))
    assert y.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]  # by hand
    y, _ = run(x.T, name, dim=0, training=eval_training(name))
    assert y.T.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_forward_and_backward_of_a_strided_input(name, dtype, device):
    base = randn(6, 8, 5, seed=12, scale=2.0, dtype=dtype, device=device)
    x = base.transpose(0, 2)[:, ::2]  # shape (5, 4, 6), neither contiguous nor dense
    assert not x.is_contiguous()
    training = eval_training(name)
    for dim in DIMS:
        g = randn(4, 5, 6, seed=13, dtype=dtype, device=device).transpose(0, 1)  # strided too
        y, grad = run(x, name, g, dim, training=training)
        assert torch.equal(y, ref_one_hot(x, dim).to(device, dtype))
        assert grad.shape == x.shape
        if name != "perturbed":
            assert_close(grad, ref_grad(name, {}, x, g, dim), dtype)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize(
    ("shape", "dim"), [((0, 5), -1), ((3, 0), -1), ((3, 0), 0), ((2, 0, 3), 1), ((2, 0, 3), 0)]
)
def test_empty_input(name, training, shape, dim):
    for dtype in (torch.float16, torch.float32):
        x = torch.zeros(shape, dtype=dtype)
        y, grad = run(x, name, torch.ones(shape, dtype=dtype), dim, training=training)
        assert y.shape == shape and y.dtype == dtype
        assert grad.shape == shape and grad.dtype == dtype


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_forward_with_infinite_logits(name, dtype, device):
    x = torch.tensor(
        [
            [INF, 0.0, 1.0, -INF],
            [-INF, -INF, -INF, -INF],
            [INF, INF, 0.0, 1.0],
            [-INF, 2.0, -INF, 2.0],
            [1.0, INF, -INF, INF],
            [-INF, 0.0, -INF, -INF],
        ],
        dtype=dtype,
        device=device,
    )
    y, _ = run(x, name, training=eval_training(name))
    expected = [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]]
    assert y.dtype == dtype and y.tolist() == expected  # by hand
    if name in STOCHASTIC:  # rows whose distribution is a point mass sample it every time
        for seed in range(5):
            torch.manual_seed(seed)
            y, _ = run(x[[0, 5]], name, training=True)
            assert y.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_row_with_nan_comes_out_nan(name, dtype, training):
    x = randn(3, 5, seed=14, dtype=dtype)
    x[1, 2] = NAN
    y, _ = run(x, name, dim=-1, training=training)
    assert y[1].isnan().any()
    assert not y[[0, 2]].isnan().any()
    if training and name in STOCHASTIC:
        assert_valid_one_hot(y[[0, 2]], -1)
    else:
        assert torch.equal(y[[0, 2]], ref_one_hot(x[[0, 2]], -1).to(dtype))
    y, _ = run(x.T, name, dim=0, training=training)  # the same along dim 0
    assert y[:, 1].isnan().any() and not y[:, [0, 2]].isnan().any()


@pytest.mark.parametrize("name", SMOOTH)
def test_a_row_with_nan_gives_a_nan_gradient_there(name):
    x, g = randn(3, 5, seed=15), randn(3, 5, seed=16)
    x[1, 2] = NAN
    _, grad = run(x, name, g, training=False)
    assert grad[1].isnan().any()
    assert_close(grad[[0, 2]], ref_grad(name, {}, x[[0, 2]], g[[0, 2]], -1), torch.float64)


# --- 2. the backward against the float64 formula -----------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("case", GRAD_CASES, ids=case_id)
def test_backward_matches_the_formula(case, dim, dtype, device):
    name, params = case
    x = randn(4, 5, 6, seed=20, scale=2.0, dtype=dtype, device=device)
    g = randn(4, 5, 6, seed=21, dtype=dtype, device=device)
    y, grad = run(x, name, g, dim, training=eval_training(name), **params)
    assert torch.equal(y, ref_one_hot(x, dim).to(device, dtype))
    assert_close(grad, ref_grad(name, params, x, g, dim), dtype)
    if name == "none":
        assert not grad.any()
    if name == "ste":
        assert torch.equal(grad, g)


@pytest.mark.parametrize("tau", [1.0, 1.5, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("dim", [0, -1])
def test_reinmax_training_gradient_uses_the_sampled_one_hot(tau, dtype, dim):
    x = randn(64, 5, seed=22, scale=0.5, dtype=dtype).movedim(-1, dim)
    g = randn(*x.shape, seed=23, dtype=dtype)
    torch.manual_seed(0)
    y, grad = run(x, "reinmax", g, dim, training=True, tau=tau)
    assert_valid_one_hot(y, dim)
    assert not torch.equal(y, ref_one_hot(x, dim).to(dtype))  # it did sample
    assert_close(grad, ref_reinmax_grad(x, g, y, tau, dim), dtype)


def _recover_softmax_point(m, k):
    """The p with J(p) = diag(p) − p·pᵀ = ``m`` and argmax p = ``k``, or None if there is none.

    Off the diagonal m_ik = −p_i·p_k, and m_kk = p_k·(1 − p_k) fixes p_k up to p_k ↔ 1 − p_k.
    """
    disc = 1 - 4 * float(m[k, k])
    if disc < -1e-9:
        return None
    for root in ((1 + math.sqrt(max(disc, 0))) / 2, (1 - math.sqrt(max(disc, 0))) / 2):
        if root <= 0:
            continue
        p = -m[:, k] / root
        p[k] = root
        close = torch.allclose(ref_softmax_jacobian_matrix(p), m, rtol=1e-7, atol=1e-10)
        if close and (p > 0).all() and int(p.argmax()) == k:
            return p
    return None


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("dim", [0, -1])
def test_gumbel_training_gradient_is_a_softmax_jacobian_at_the_sampled_point(tau, dim):
    """The backward is J(softmax((x + G)/τ))/τ for some G with argmax(x + G) the returned sample.

    Rebuild the full Jacobian of each row from n backward passes through one sampled forward, undo
    the 1/τ, and recover p from J(p): it must exist, be a probability vector with full support,
    and peak where the sample is.
    """
    rows, n = 16, 5
    x = randn(rows, n, seed=24, scale=0.7).movedim(-1, dim).requires_grad_(True)
    torch.manual_seed(1)
    y = surrogate.argmax(x, "gumbel", dim, training=True, tau=tau)
    assert_valid_one_hot(y.detach(), dim)
    columns = []
    for k in range(n):
        e_k = torch.zeros_like(x).index_fill_(dim % 2, torch.tensor([k]), 1.0)
        (column,) = torch.autograd.grad(y, x, e_k, retain_graph=True)
        columns.append(column.movedim(dim, -1))
    jacobians = tau * torch.stack(columns, -1)  # (rows, n, n): J(p) for each row
    samples = y.detach().movedim(dim, -1).argmax(-1)
    assert (samples != x.detach().movedim(dim, -1).argmax(-1)).any()  # it did sample
    for m, k in zip(jacobians, samples.tolist(), strict=True):
        torch.testing.assert_close(m, m.T, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(m.sum(-1), torch.zeros(n, dtype=m.dtype), rtol=0, atol=1e-12)
        assert _recover_softmax_point(m, k) is not None, (m, k)


def test_gumbel_training_formula_with_the_seeded_noise():
    """With the global seed set, the forward draws torch.rand_like(x) once (the library's
    documented use of the RNG): G = −log(−log U). Sample and gradient then follow exactly."""
    x, g = randn(32, 6, seed=25), randn(32, 6, seed=26)
    for tau in (0.5, 1.0, 2.0):
        torch.manual_seed(3)
        y, grad = run(x, "gumbel", g, training=True, tau=tau)
        torch.manual_seed(3)
        z = x - torch.log(-torch.log(torch.rand_like(x)))
        assert torch.equal(y, ref_one_hot(z, -1))
        expected = ref_softmax_jvp(ref_softmax(z / tau, -1), g, -1) / tau
        torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


# --- 3. sampling in training, plain argmax in eval ---------------------------------------------

LOGITS = [1.0, 0.0, -0.5, 0.5, -1.0]  # exact in every dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    ("name", "tau"),
    [("gumbel", 0.5), ("gumbel", 1.0), ("gumbel", 2.0), ("reinmax", 1.0), ("reinmax", 2.0)],
)
def test_training_samples_follow_softmax_of_the_logits(name, tau, dtype):
    rows = 20000
    logits = torch.tensor(LOGITS, dtype=dtype)
    torch.manual_seed(4)
    y, _ = run(logits.expand(rows, -1), name, training=True, tau=tau)
    assert_valid_one_hot(y, -1)
    counts = y.double().sum(0)
    target = ref_softmax(logits.double(), -1)
    assert chi_square(counts, target) < 25.0  # 4 degrees of freedom: P(χ² > 25) ≈ 5e-5
    if tau != 1.0:  # and not softmax(x/τ): the test can tell the two apart
        assert chi_square(counts, ref_softmax(logits.double() / tau, -1)) > 200.0


@pytest.mark.parametrize("name", STOCHASTIC)
def test_training_samples_along_dim_0_are_per_column(name):
    logits = torch.tensor(LOGITS, dtype=torch.float64)
    torch.manual_seed(5)
    y, _ = run(logits[:, None].expand(-1, 20000), name, dim=0, training=True)
    assert_valid_one_hot(y, 0)
    assert chi_square(y.sum(1), ref_softmax(logits, -1)) < 25.0


@pytest.mark.parametrize("name", STOCHASTIC)
def test_eval_is_deterministic_and_the_plain_argmax(name):
    x = randn(2000, 4, seed=27, scale=0.2)  # samples would disagree with the argmax often
    outputs = []
    for seed in range(3):
        torch.manual_seed(seed)
        outputs.append(run(x, name, training=False)[0])
    for y in outputs:
        assert torch.equal(y, ref_one_hot(x, -1))


@pytest.mark.parametrize("name", STOCHASTIC)
def test_module_follows_train_and_eval(name):
    x = randn(2000, 4, seed=28, scale=0.2)
    plain = ref_one_hot(x, -1)
    layer = surrogate.ArgMax(name)
    model = torch.nn.Sequential(torch.nn.Identity(), layer)
    assert layer.training
    torch.manual_seed(6)
    assert not torch.equal(model(x), plain)
    model.eval()
    assert not layer.training
    assert torch.equal(model(x), plain)
    model.train()
    torch.manual_seed(7)
    sampled = model(x)
    assert_valid_one_hot(sampled, -1)
    assert not torch.equal(sampled, plain)


# --- 4. never NaN on large or half-precision logits --------------------------------------------

FINITE_CASES = [
    ("softmax", {}),
    ("softmax", {"tau": 0.1}),
    ("gumbel", {}),
    ("gumbel", {"tau": 0.1}),
    ("reinmax", {}),
    ("reinmax", {"tau": 2.0}),
    ("sparsemax", {}),
    ("sparsemax", {"tau": 0.1}),
    ("perturbed", {}),
    ("perturbed", {"sigma": 0.1}),
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", FINITE_CASES, ids=case_id)
def test_large_logits_stay_finite(case, dtype, training):
    name, params = case
    big = 1e4
    rows = [
        [big, -big, 0.0, big / 2, -big / 2],
        [-big, -big, -big, -big, -big],
        [big, big, -big, 0.0, 1.0],
        [-big, -big + 1, 0.0, -big, -big],
    ]
    if dtype == torch.float16:
        rows.append([6e4, -6e4, 0.0, 6e4, 1.0])  # near the fp16 limit 65504
    x = torch.cat([torch.tensor(rows), 30 * randn(32, 5, seed=29)]).to(dtype)
    g = randn(*x.shape, seed=30, dtype=dtype)
    for seed in range(3):
        torch.manual_seed(seed)
        y, grad = run(x, name, g, training=training, **params)
        assert_valid_one_hot(y, -1)
        assert grad.isfinite().all(), grad
        if not training or name not in STOCHASTIC:
            assert torch.equal(y, ref_one_hot(x, -1).to(dtype))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", [*SMOOTH, "perturbed"])
def test_infinite_logits_give_the_limit_gradient_not_nan(name, training):
    """±inf give the limits, never NaN. A row with one +inf logit is the limit of one
    logit growing without bound: softmax and sparsemax tend to its one-hot, whose Jacobian is 0.
    −inf logits have probability 0 and the other entries follow the formula."""
    x = torch.tensor(
        [
            [INF, 0.0, 1.0, -INF],  # one +inf: limit gradient 0
            [-INF, 0.0, 1.0, -INF],  # −inf entries: probability 0 there
            [2.0, -1.0, 0.5, 0.0],  # finite
            [-INF, -INF, -INF, -INF],  # no limit defined: finite
            [INF, INF, 0.0, 1.0],  # no limit defined: finite
        ],
        dtype=torch.float64,
    )
    g = randn(5, 4, seed=31)
    torch.manual_seed(8)
    y, grad = run(x, name, g, training=training)
    assert_valid_one_hot(y, -1)
    assert grad.isfinite().all(), grad
    if name == "perturbed":
        return
    assert not grad[0].any()
    if name == "reinmax":
        expected = ref_reinmax_grad(x[1:3], g[1:3], y[1:3], 1.0, -1)
        torch.testing.assert_close(grad[1:3], expected, rtol=1e-10, atol=1e-12)
    elif training and name == "gumbel":
        assert not grad[1, [0, 3]].any()
    else:
        torch.testing.assert_close(grad[1:3], ref_grad(name, {}, x[1:3], g[1:3], -1))


# --- 5. perturbed: the Monte-Carlo gradient --------------------------------------------------


@pytest.mark.parametrize(("a", "b", "sigma"), [(0.3, -0.2, 1.0), (1.0, 0.0, 0.5), (0.0, 0.0, 2.0)])
def test_perturbed_gradient_expectation_for_two_classes(a, b, sigma):
    """E[one-hot(argmax(x + σZ))]₀ = Φ((a − b)/(σ√2)): its gradient is φ(d)/(σ√2)·[1, −1]."""
    rows, samples = 64, 4000
    x = torch.tensor([a, b], dtype=torch.float64).expand(rows, 2)
    g = torch.tensor([1.0, 0.0], dtype=torch.float64).expand(rows, 2)
    torch.manual_seed(9)
    _, grad = run(x, "perturbed", g, sigma=sigma, samples=samples)
    scale = sigma * math.sqrt(2)
    slope = ref_normal_pdf((a - b) / scale) / scale
    h = 1e-5  # the slope is the derivative of Φ((a − b)/(σ√2)) in a
    finite_difference = ref_normal_cdf((a + h - b) / scale) - ref_normal_cdf((a - h - b) / scale)
    assert abs(finite_difference / (2 * h) - slope) < 1e-8
    standard_error = 1 / (sigma * math.sqrt(rows * samples))  # each term has variance <= 1/σ²
    mean = grad.mean(0)
    assert abs(float(mean[0]) - slope) < 5 * standard_error, (mean, slope)
    assert abs(float(mean[1]) + slope) < 5 * standard_error, (mean, slope)


@pytest.mark.parametrize(
    "params", [{}, {"sigma": 0.5, "samples": 5}, {"sigma": 2.0, "samples": 1}], ids=str
)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dim", [0, -1])
def test_perturbed_gradient_formula_with_the_seeded_draws(params, dtype, dim):
    """With the global seed set before backward, the library draws torch.randn_like M times, in
    order, on x computed in fp32 for half inputs (x's dtype otherwise)."""
    sigma, samples = params.get("sigma", 1.0), params.get("samples", 16)
    x = randn(6, 5, seed=32, scale=1.5, dtype=dtype)
    g = randn(6, 5, seed=33, dtype=dtype)
    xc = x.float() if dtype in (torch.float16, torch.bfloat16) else x
    x_leaf = x.detach().requires_grad_(True)
    y = surrogate.argmax(x_leaf, "perturbed", dim, **params)
    assert torch.equal(y.detach(), ref_one_hot(x, dim).to(dtype))
    torch.manual_seed(10)
    (grad,) = torch.autograd.grad(y, x_leaf, g)
    torch.manual_seed(10)
    draws = [torch.randn_like(xc) for _ in range(samples)]
    assert_close(grad, ref_perturbed_grad(xc, g, draws, sigma, dim), dtype)


# --- 6. relaxed mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize(
    ("name", "smooth"), [("softmax", ref_softmax), ("sparsemax", ref_sparsemax)]
)
def test_relaxed_forward_and_exact_jacobian(name, smooth, tau, dim):
    x = randn(3, 4, 5, seed=34, scale=1.5)

    def relaxed(t):
        return surrogate.argmax(t, name, dim, relaxed=True, tau=tau)

    torch.testing.assert_close(relaxed(x), smooth(x / tau, dim), rtol=1e-12, atol=1e-12)
    jacobian = torch.autograd.functional.jacobian(relaxed, x)
    expected = torch.autograd.functional.jacobian(lambda t: smooth(t / tau, dim), x)
    torch.testing.assert_close(jacobian, expected, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(relaxed, (x.clone().requires_grad_(True),))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    ("name", "smooth"), [("softmax", ref_softmax), ("sparsemax", ref_sparsemax)]
)
def test_relaxed_forward_keeps_the_dtype(name, smooth, dtype):
    x = randn(8, 6, seed=35, scale=2.0, dtype=dtype)
    y, _ = run(x, name, relaxed=True, tau=0.5)
    assert_close(y, smooth(x.double() / 0.5, -1), dtype)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_relaxed_gumbel(tau):
    x, g = randn(16, 5, seed=36), randn(16, 5, seed=37)
    y, grad = run(x, "gumbel", g, training=False, relaxed=True, tau=tau)  # eval: softmax(x/τ)
    torch.testing.assert_close(y, ref_softmax(x / tau, -1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad("gumbel", {"tau": tau}, x, g, -1))
    torch.manual_seed(11)
    y, grad = run(x, "gumbel", g, training=True, relaxed=True, tau=tau)  # softmax((x + G)/τ)
    assert (y > 0).all()
    torch.testing.assert_close(y.sum(-1), torch.ones(16, dtype=torch.float64))
    assert not torch.allclose(y, ref_softmax(x / tau, -1), atol=1e-3)
    torch.testing.assert_close(grad, ref_softmax_jvp(y, g, -1) / tau, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NOT_RELAXABLE)
def test_relaxed_is_refused_without_a_smooth_forward(name):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=name):
        surrogate.argmax(x, name, relaxed=True)
    with pytest.raises(ValueError, match=name):
        surrogate.ArgMax(name, relaxed=True)
    layer = surrogate.ArgMax(name)
    with pytest.raises(ValueError, match=name):
        layer.relaxed = True
    relaxed_layer = surrogate.ArgMax("softmax", relaxed=True)
    with pytest.raises(ValueError, match=name):
        relaxed_layer.estimator = name


# --- 7. the module equals the function ---------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("case", MODULE_CASES, ids=case_id)
def test_module_equals_function(case, dim, training):
    name, params = case
    x, g = randn(3, 4, 5, seed=38), randn(3, 4, 5, seed=39)
    layer = surrogate.ArgMax(name, dim, **params).train(training)
    results = []
    for fn in (layer, lambda t: surrogate.argmax(t, name, dim, training=training, **params)):
        xl = x.clone().requires_grad_(True)
        torch.manual_seed(12)
        y = fn(xl)
        torch.manual_seed(13)
        (grad,) = torch.autograd.grad(y, xl, g)
        results.append((y.detach(), grad))
    (y_module, grad_module), (y_function, grad_function) = results
    assert torch.equal(y_module, y_function)
    assert torch.equal(grad_module, grad_function)


@pytest.mark.parametrize("name", ["softmax", "gumbel", "sparsemax"])
def test_relaxed_module_equals_relaxed_function(name):
    x = randn(4, 5, seed=40)
    layer = surrogate.ArgMax(name, relaxed=True, tau=0.5).eval()
    expected = surrogate.argmax(x, name, relaxed=True, training=False, tau=0.5)
    assert torch.equal(layer(x), expected)


def test_module_default_dim_is_the_last():
    x = randn(3, 4, 5, seed=41)
    assert torch.equal(surrogate.ArgMax("ste")(x), ref_one_hot(x, -1))


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("reinmax", "tau", 0.99),
        ("reinmax", "tau", 0.5),
        ("softmax", "tau", 0.0),
        ("gumbel", "tau", -1.0),
        ("sparsemax", "tau", 0.0),
        ("perturbed", "sigma", 0.0),
        ("perturbed", "samples", 0),
    ],
)
def test_out_of_range_parameters_are_refused(name, key, value):
    with pytest.raises(ValueError, match=key):
        surrogate.argmax(torch.zeros(2, 3), name, **{key: value})
    with pytest.raises(ValueError, match=key):
        surrogate.ArgMax(name, **{key: value})


def test_reinmax_tau_one_is_allowed():
    _, grad = run(randn(2, 3), "reinmax", torch.ones(2, 3, dtype=torch.float64), tau=1.0)
    assert grad.isfinite().all()
