"""Checkpoints that are never half-written."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from surrogate.training.atomic import write_atomic


class AtomicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes to a temporary file and renames it into place, so a run
    killed while saving keeps its previous ``last.ckpt``."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        def save(tmp: Path) -> None:
            ModelCheckpoint._save_checkpoint(self, trainer, str(tmp))

        if trainer.is_global_zero:
            write_atomic(filepath, save)
        else:  # every process takes part in saving (a barrier); rank 0 alone writes
            save(Path(filepath).with_name(f".{Path(filepath).name}.tmp"))
        trainer.strategy.barrier()
