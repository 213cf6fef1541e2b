"""The run's config: the typed schema (``schema``), the op config parsed (``op``), the schedule
(``schedule``), the check before anything runs (``validate``), a config composed as ``train.py``
would (``compose``) and the Hydra callbacks (``hydra_callbacks``). Every number's range is in
``surrogate.training.ranges``, which the models' configs use too."""
