"""The run's config: the typed schema (``schema``), every number's range (``ranges``), the op
config parsed (``op``), the schedule (``schedule``), the check before anything runs (``validate``),
a config composed as ``train.py`` would (``compose``) and the Hydra callbacks
(``hydra_callbacks``)."""
