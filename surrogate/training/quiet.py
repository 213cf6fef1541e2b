"""Lines of the dependencies that a user cannot act on, kept out of the output of a run and of a
user's own script that uses this app's callbacks (``surrogate.training.callbacks`` installs this
on import; ``quiet_lightning()`` again does nothing more):

- Lightning's advertisements (``💡 Tip: ... litlogger``, ``... litmodels``) and its notes that a
  setting has the value it means by default (``limit_*_batches=1.0 was configured so ...``);
- Lightning's advice, on a GPU with Tensor Cores, to lower ``torch.set_float32_matmul_precision``
  (a process-wide setting that changes the numbers; the app's precision is ``trainer.precision``);
- Lightning's own use of a torch API that torch deprecated (``isinstance(treespec, LeafSpec)``).

The CUDA toolkit note a CPU-only torch logs when it compiles (``No CUDA runtime is found``) is kept
out by the library itself (``surrogate.fused``).

Every other message, Lightning's advice on a user's setting included, is left as it is.
"""

from __future__ import annotations

import logging
import warnings

# Lightning's rank-zero messages go through one of these, whichever was imported last.
LIGHTNING_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
)


class DropLightningNoise(logging.Filter):
    """Drops the log records that hold one of ``NOISE``."""

    NOISE = ("💡 Tip:", "was configured so", "that has Tensor Cores")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(noise in record.getMessage() for noise in self.NOISE)


def quiet_lightning() -> None:
    """Install the filter on Lightning's loggers (once) and ignore the deprecation warning."""
    for name in LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, DropLightningNoise) for f in log.filters):
            log.addFilter(DropLightningNoise())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
