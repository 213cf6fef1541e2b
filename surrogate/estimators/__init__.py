"""The estimator catalogue: the registry (``base``), PyTorch's and the straight-through estimators
(``common``), the smooth bumps of the scalar ops (``bumps``), argmax's estimators (``argmax``), and
lookup by name (``catalogue``). Importing this package registers every named estimator."""

# isort: off
# The catalogue first: it registers the estimators in the order `available()` lists them.
from surrogate.estimators.catalogue import available, estimator, parameters, resolve
from surrogate.estimators.base import Estimator
from surrogate.estimators.bumps import Bump, Custom

# isort: on

__all__ = ["Bump", "Custom", "Estimator", "available", "estimator", "parameters", "resolve"]
