"""The estimator catalogue. Importing this package registers every named estimator."""

# isort: off
# Registration order is the order `available()` lists: the shared ones, the bumps, then argmax's.
from surrogate.estimators import common, bumps, argmax  # noqa: F401

# isort: on
from surrogate.estimators.base import Estimator, available, estimator, parameters, resolve
from surrogate.estimators.bumps import Bump, Custom

__all__ = ["Bump", "Custom", "Estimator", "available", "estimator", "parameters", "resolve"]
