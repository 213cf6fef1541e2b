"""The Spiking Heidelberg Digits (Cramer, Stradmann, Schemmel & Zenke, IEEE TNNLS 2020): spoken
digits 0 to 9 in English and German (20 classes) as the spikes of 700 cochlea channels.

Two HDF5 files, ``shd_train.h5`` and ``shd_test.h5`` (the splits), both in ``data.root`` or both in
``data.root/shd`` (looked for in that order); ``data.download=true`` fetches the missing ones into
``data.root/shd`` from zenkelab.org and unzips them. Each file holds ``spikes/times`` (one array
of spike times per example, in seconds), ``spikes/units`` (the channel of each spike, 0 to 699)
and ``labels``. The spikes of the first ``data.duration`` seconds (later ones are dropped) are
binned into ``data.time_steps`` equal steps, step b holding the times in
[b duration / time_steps, (b + 1) duration / time_steps): an example is a (time_steps, 700) array
of 0/1, a 1 where the channel spiked in that step, once however many times it did (several spikes
of one channel in one step count as one).
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from pathlib import Path
from urllib.request import urlopen

import numpy as np

from surrogate.training.atomic import write_atomic
from surrogate.training.data import DataError, DataSet, DataShape, Part, register_dataset
from surrogate.training.data.base import refuse_image_size, required

UNITS, CLASSES = 700, 20
FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
KEYS = ("spikes/times", "spikes/units", "labels")
URL = "https://zenkelab.org/datasets/{}.gz"


def folders(root: str | Path) -> list[Path]:
    """Where the two files are looked for, in order; the last is where they are downloaded."""
    return [Path(root), Path(root) / "shd"]


def find(root: str | Path) -> dict[str, Path] | None:
    """The two files in the first folder that holds them both, or None."""
    for folder in folders(root):
        paths = {split: folder / name for split, name in FILES.items()}
        if all(path.is_file() for path in paths.values()):
            return paths
    return None


def read_shd(path: Path, time_steps: int, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """One SHD file's examples binned to (N, time_steps, 700) uint8 0/1, and its labels.

    Raises DataError, naming the file, if it is not HDF5, lacks one of ``KEYS``, holds counts that
    disagree (examples in spikes/times, spikes/units and labels; an example's times and units), a
    unit outside [0, 700), or a spike time that is negative or not a number.
    """
    import h5py

    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    with file:
        missing = [key for key in KEYS if key not in file]
        if missing:
            raise DataError(f"{path}: no {', '.join(missing)}; an SHD file holds {', '.join(KEYS)}")
        times, units = file["spikes/times"][()], file["spikes/units"][()]
        labels = np.asarray(file["labels"][()])
    counts = {"spikes/times": len(times), "spikes/units": len(units), "labels": len(labels)}
    if len(set(counts.values())) > 1:
        held = ", ".join(f"{key} {count}" for key, count in counts.items())
        raise DataError(
            f"{path}: ragged: {held} entries; spikes/times, spikes/units and labels hold one "
            "entry per example"
        )
    x = np.zeros((len(labels), time_steps, UNITS), dtype=np.uint8)
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        t, u = np.asarray(t, dtype=np.float64), np.asarray(u)
        if t.shape != u.shape or t.ndim != 1:
            raise DataError(
                f"{path}: ragged: example {i} has {t.size} spike times but {u.size} spike units; "
                "an example's spikes/times and spikes/units are of one length"
            )
        if u.size and not np.issubdtype(u.dtype, np.integer):
            raise DataError(f"{path}: spikes/units of example {i} are {u.dtype}, not integers")
        bad = np.flatnonzero((u < 0) | (u >= UNITS))
        if bad.size:
            raise DataError(
                f"{path}: example {i}: unit {u[bad[0]]} (spike {bad[0]}) is out of range; SHD "
                f"units are 0 to {UNITS - 1}"
            )
        bad = np.flatnonzero(~(t >= 0))  # NaN too
        if bad.size:
            raise DataError(
                f"{path}: example {i}: spike time {t[bad[0]]:g} (spike {bad[0]}) is invalid; "
                "spike times are seconds from the example's start, >= 0"
            )
        kept = t < duration
        steps = np.minimum(np.floor(t[kept] * time_steps / duration), time_steps - 1)
        x[i, steps.astype(np.int64), u[kept]] = 1
    return x, labels


@register_dataset("shd")
class SHD(DataSet):
    spikes = True
    can_download = True

    def shape(self, root, time_steps=None, image_size=None, **options):
        refuse_image_size(self.name, image_size)
        (time_steps,) = required(self.name, time_steps=time_steps)
        return DataShape((time_steps, UNITS), CLASSES)

    def check_files(self, root, **options):
        if find(root) is None:
            looked = ", ".join(
                str(folder / name) for folder in folders(root) for name in FILES.values()
            )
            raise FileNotFoundError(
                f"data: shd not found; looked for {looked} (both files in one folder); set "
                "data.root to the folder that holds them, or data.download=true"
            )

    def download(self, root):
        folder = folders(root)[-1]
        folder.mkdir(parents=True, exist_ok=True)
        for name in FILES.values():
            if not (folder / name).is_file():
                fetch(URL.format(name), folder / name)

    def read(self, root, shape, duration=None, **options):
        (duration,) = required(self.name, duration=duration)
        self.check_files(root)
        paths = find(root)
        time_steps = shape.input_shape[0]
        parts = []
        for split in ("train", "test"):
            x, y = read_shd(paths[split], time_steps, duration)
            parts.append(Part(x, y, paths[split], paths[split]))
        return parts[0], parts[1]


def fetch(url: str, path: Path) -> None:
    """Download the gzipped file at ``url`` and write it unzipped to ``path``, atomically (a
    temporary file beside it, renamed when whole)."""

    def write(tmp: Path) -> None:
        with (
            urlopen(url, timeout=60) as response,
            gzip.GzipFile(fileobj=response) as source,
            open(tmp, "wb") as target,
        ):
            shutil.copyfileobj(source, target, length=1 << 20)

    try:
        write_atomic(path, write)
    except (OSError, EOFError, zlib.error) as err:  # URLError, a bad gzip, a full disk
        raise OSError(f"data.download: could not fetch {url} into {path}: {err}") from err
