"""The Lightning callbacks of a run: the estimators into the network (``apply_estimators``), the
learning curves (``curves``), the checkpoints (``checkpoint``), and the values recorded at each
validation (``recorder``, their base): the hard-op diagnostics (``diagnostics``, measured without
Lightning; ``diagnostics_recorder``) and the scheduled parameters (``schedule_recorder``)."""

from surrogate.training.quiet import quiet_lightning

# A user's own script that uses these callbacks is as quiet as a run of train.py.
quiet_lightning()
