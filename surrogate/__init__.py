"""surrogate: hard ops with exact forwards and a chosen surrogate backward.

    import surrogate
    y = surrogate.step(x, "atan")                  # exact step forward, atan-bump backward
    onehot = surrogate.argmax(logits, "gumbel", dim=-1, tau=0.5)
    layer = surrogate.Sign("clipped_ste")          # nn.Module; layer.estimator is settable
    surrogate.available("argmax")                  # the estimators that apply to an op

See SPEC section 2 (forwards) and section 3 (estimators) for the formulas.
"""

from surrogate.estimators import Custom, Estimator, available, estimator, parameters
from surrogate.functional import argmax, round, sign, step
from surrogate.modules import ArgMax, HardOp, Round, Sign, Step

__all__ = [
    "ArgMax",
    "Custom",
    "Estimator",
    "HardOp",
    "Round",
    "Sign",
    "Step",
    "argmax",
    "available",
    "estimator",
    "parameters",
    "round",
    "sign",
    "step",
]
__version__ = "0.1.0"
