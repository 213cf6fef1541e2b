"""A run's two checkpoints, never half-written and kept across a resume.

- ``best.ckpt`` (:class:`BestCheckpoint`): the state at the best validation so far; the run's
  test uses it.
- ``last.ckpt`` (:class:`LastCheckpoint`): the state after the latest validation, always, so a
  killed run loses at most the epoch it was in. (Lightning's own ``save_last`` rewrites it, in
  pytorch-lightning 2.6, only on the validations that also save a top-k checkpoint.)

Both carry the best score and path in their state. A run resumed from them into another folder
(what Hydra gives a resumed command) brings the best checkpoint along, so "best" still means best
over the whole run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only, rank_zero_warn

from surrogate.training.atomic import write_atomic


class AtomicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes to a temporary file and renames it into place, so a run
    killed while saving keeps its previous file, and whose state follows the run when it resumes
    in another folder."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        def save(tmp: Path) -> None:
            ModelCheckpoint._save_checkpoint(self, trainer, str(tmp))

        if trainer.is_global_zero:
            write_atomic(filepath, save)
        else:  # every process takes part in saving (a barrier); rank 0 alone writes
            save(Path(filepath).with_name(f".{Path(filepath).name}.tmp"))
        trainer.strategy.barrier()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old is None or self.dirpath is None or Path(old) == Path(self.dirpath):
            super().load_state_dict(state_dict)
            return
        # Resumed into another folder: bring the files this state names into ours.
        best = state_dict.get("best_model_path")
        moved_best = self._bring(best)
        if best and not moved_best:
            rank_zero_warn(
                f"resuming without the best checkpoint {best} (not found): the best validation "
                "from here on is tested"
            )
            return
        state = dict(state_dict, dirpath=self.dirpath, best_model_path=moved_best)
        for key in ("last_model_path", "kth_best_model_path"):
            state[key] = self._moved_path(state_dict[key]) if state_dict.get(key) else ""
        state["best_k_models"] = {
            self._moved_path(path): score
            for path, score in state_dict.get("best_k_models", {}).items()
        }
        super().load_state_dict(state)

    def _moved_path(self, path: str) -> str:
        return str(Path(self.dirpath) / Path(path).name)

    def _bring(self, path: str | None) -> str:
        """``path``'s file copied (atomically) into this callback's folder; its new path, or ""
        if there is none (a copy an earlier resume brought serves when ``path`` is gone)."""
        if not path:
            return ""
        target = self._moved_path(path)
        if Path(path).is_file():
            _copy(path, target)
        return target if Path(target).is_file() else ""


@rank_zero_only
def _copy(source: str, target: str) -> None:
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, lambda tmp: shutil.copyfile(source, tmp))


class BestCheckpoint(AtomicCheckpoint):
    """``dirpath/best.ckpt``: the state at the best ``monitor`` value so far."""

    def __init__(self, dirpath: str | Path, monitor: str, mode: str):
        super().__init__(
            dirpath=dirpath,
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
        )


class LastCheckpoint(AtomicCheckpoint):
    """``dirpath/last.ckpt``: the state after every validation (or every epoch, when a run does
    not validate). List it after :class:`BestCheckpoint`, so the state it saves includes that
    validation's best."""

    def __init__(self, dirpath: str | Path):
        super().__init__(
            dirpath=dirpath, filename="last", save_top_k=1, save_last=False,
            enable_version_counter=False,
        )  # fmt: skip
