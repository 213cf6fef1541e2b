"""Argmax estimators' gradients against the exact gradient: ``quality`` (the measures),
``problems`` (a toy loss and a trained categorical VAE's batch), ``report`` (the committed report:
``python -m surrogate.training.gradients OUT``)."""
