"""The training app: trains the hard-op CNN and compares estimators across sweeps.

A layer on top of the library (``surrogate``), which never imports it; it needs the ``train`` extra
(PyTorch Lightning, Hydra, torchmetrics, torchvision, scikit-learn, matplotlib). ``train.py`` at
the repository root is its Hydra entry point, ``configs/`` its YAML.

- ``networks``: the hard-op CNN and its plain-PyTorch twin
- ``datasets``, ``datamodule``: the data sets' files, and the splits and loaders
- ``classifier``, ``optimization``: the LightningModule, its optimizer and schedule
- ``apply_estimators``, ``curves``, ``checkpoint``: Lightning callbacks
- ``validate``, ``config_ranges``: the config checked before anything runs
- ``run``: one run from a plain config dict; ``report``, ``sweep_plan``, ``significance``: the
  comparison of a sweep's runs
- ``estimator_figure``: every estimator's backward in one PNG
- ``schema``, ``hydra_callbacks``: the Hydra side (typed config, config check, sweep report)
- ``atomic``, ``running_mean``, ``seeding``: small helpers
"""
