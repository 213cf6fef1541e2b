"""surrogate: hard ops with exact forwards and a chosen surrogate backward.

    import surrogate
    y = surrogate.step(x, "atan")                  # exact step forward, atan-bump backward
    onehot = surrogate.argmax(logits, "gumbel", dim=-1, tau=0.5)
    layer = surrogate.Sign("clipped_ste")          # nn.Module; layer.estimator is settable
    surrogate.available("argmax")                  # the estimators that apply to an op

Binary and low-bit layers (the weights' sign or round takes the estimator):

    surrogate.BinaryConv2d(64, 128, 3, padding=1)  # sign(w) of real latent weights, clipped STE
    surrogate.QuantLinear(512, 10, bits=4, learn_step=True)   # LSQ on weights and inputs
    surrogate.Bop(surrogate.binary_weights(model)) # flips binary weights (Helwegen et al. 2019)

Spiking neurons over a leading time axis, (T, B, ...) inputs to spikes:

    surrogate.LIF(beta=0.9, estimator="atan")      # leaky integrate-and-fire, one fused node
    surrogate.RecurrentLIF(128)                    # + a recurrent weight from the last spikes
    surrogate.ALIF(features=128, adaptation=1.8)   # + an adaptive threshold (Bellec et al. 2018)

For models written without this library:

    print(surrogate.audit(model, x))               # where the gradient dies, and why
    with surrogate.intercept(sign="atan", argmax="softmax"):
        loss = model(x).sum()                      # torch.sign, argmax + one_hot: surrogate grads
    surrogate.swap(model, sign="ste")              # every surrogate.Sign module in the model

For code that names estimators per op (a config):

    surrogate.parse_ops({"sign": "atan"}, "op")    # {"sign": OpEstimator(estimator, relaxed)}
    surrogate.available()                          # every estimator's name
    surrogate.parameters("perturbed")              # {"sigma": 1.0, "samples": 16}: float, int

The forwards are exact (``surrogate.hardops``); the estimators' formulas are in the docstrings of
``surrogate.estimators``. The training app, ``surrogate.training``, is a separate layer that this
package never imports.
"""

# audit, intercept and swap are modules called as their function (surrogate.callable_module):
# surrogate.audit(model, x) is surrogate.audit.audit(model, x), and surrogate.audit.cli imports.
from surrogate import audit, intercept, swap
from surrogate.binary import BinaryConv2d, BinaryLinear, binary_weights, clip_latent_weights
from surrogate.estimators import Custom, Estimator, available, estimator, parameters
from surrogate.functional import argmax, round, sign, step
from surrogate.modules import ArgMax, HardOp, Round, Sign, Step
from surrogate.neurons import ALIF, LIF, RecurrentLIF
from surrogate.op_estimators import OpEstimator, parse_ops
from surrogate.optim import Bop
from surrogate.quantize import QuantConv2d, Quantize, QuantLinear
from surrogate.schedules import EstimatorSchedule, Schedule

__all__ = [
    "ALIF",
    "ArgMax",
    "BinaryConv2d",
    "BinaryLinear",
    "Bop",
    "Custom",
    "Estimator",
    "EstimatorSchedule",
    "HardOp",
    "LIF",
    "OpEstimator",
    "QuantConv2d",
    "QuantLinear",
    "Quantize",
    "RecurrentLIF",
    "Round",
    "Schedule",
    "Sign",
    "Step",
    "argmax",
    "audit",
    "available",
    "binary_weights",
    "clip_latent_weights",
    "estimator",
    "intercept",
    "parameters",
    "parse_ops",
    "round",
    "sign",
    "step",
    "swap",
]
__version__ = "0.1.0"
