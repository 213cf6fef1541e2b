"""Seeds derived from the run's ``seed``, so that what happens in an epoch depends on (seed, epoch)
alone and a resumed run repeats a run never stopped."""

from __future__ import annotations

_SEED_STRIDE = 1_000_003  # a prime larger than any epoch count: (seed, epoch) pairs never collide
_RANKS = 64  # room for this many processes per (seed, epoch)


def epoch_seed(seed: int, epoch: int, rank: int | None = None) -> int:
    """The seed of ``epoch``. The shuffling order draws from ``epoch_seed(seed, epoch)``, the
    global RNG of process ``rank`` (stochastic estimators' noise) from
    ``epoch_seed(seed, epoch, rank)``."""
    base = seed * _SEED_STRIDE + epoch
    return base if rank is None else base * _RANKS + rank
