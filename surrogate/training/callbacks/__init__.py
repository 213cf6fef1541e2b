"""The Lightning callbacks of a run: the estimators into the network (``apply_estimators``), the
learning curves (``curves``), the checkpoints (``checkpoint``), and the values recorded at each
validation (``recorder``, their base): the hard-op diagnostics (``diagnostics``, measured without
Lightning; ``diagnostics_recorder``) and the scheduled parameters (``schedule_recorder``)."""
