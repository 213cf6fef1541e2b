"""``ScheduleRecorder``: the scheduled estimator parameters in force, at every validation.

Logged as ``schedule/<op>.<parameter>`` (``schedule/step.beta``), and ``schedule/relaxed`` (1
while the ops train relaxed) where the schedule has a relaxed phase: the values of the last
training step before the validation.
"""

from __future__ import annotations

from surrogate.training.callbacks.apply_estimators import ApplyEstimators
from surrogate.training.callbacks.recorder import ValidationRecorder


class ScheduleRecorder(ValidationRecorder):
    """See the module docstring; ``source`` is the callback that applies the schedule."""

    prefix = "schedule"

    def __init__(self, path, source: ApplyEstimators):
        super().__init__(path)
        self.source = source

    def measure(self, trainer, pl_module) -> dict[str, float] | None:
        schedule = self.source.schedule
        if schedule is None:
            return None
        return schedule.values(max(trainer.global_step - 1, 0), max(trainer.current_epoch, 0))
