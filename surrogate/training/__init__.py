"""The training app: trains networks whose hard ops take their estimators from a config, and
compares estimators across sweeps.

A layer on top of the library (``surrogate``), which never imports it, and which it uses only by
the names ``surrogate`` exports; it needs the ``train`` extra (PyTorch Lightning, Hydra,
torchmetrics, torchvision, scikit-learn, matplotlib). ``train.py`` at the repository root is its
Hydra entry point, ``configs/`` its YAML.

- ``run``: one run from a plain config dict; ``module``: the LightningModule; ``optimization``
- ``models``: one network a file, each registered with its typed config
- ``tasks``: what a batch is, the loss and the headline metric
- ``data``: one data set a file, each registered with its reader; ``data.datamodule``
- ``callbacks``: the estimators into the network, curves, checkpoints, diagnostics, schedules
- ``config``: the typed schema, the ranges, the op config parsed, the check before anything runs,
  the Hydra callbacks
- ``report``: a sweep's comparison and its significance, the estimator figure
"""
