"""Random manifolds ("randman"), the spike-timing task of Zenke & Vogels (Neural Computation 33(4),
2021), generated from ``data.generator_seed``: no files, no download, no test split of its own
(``data.test_fraction`` of it is held out).

Each class is a random smooth map from the ``manifold_dim``-dimensional unit cube to ``units``
values: unit i's value at a point p is

    sum over dimensions d and harmonics k = 1..HARMONICS of
        a[i, d, k] / k**smoothness * sin(2 pi (k p[d] + phase[i, d, k]))

with a and phase uniform in [0, 1) (``smoothness`` is the paper's alpha: the larger, the smoother
the manifold). ``samples_per_class`` points are drawn uniformly in the cube; each unit's values
over the class's points are then scaled to [0, 1] (its lowest to 0, its highest to 1), and unit i
of a sample fires exactly one spike, at time step floor(value * steps), the last step for value 1.
An example is a (steps, units) array of 0/1, with one 1 in each column.
"""

from __future__ import annotations

import numpy as np

from surrogate.training.data import DataSet, DataShape, Part, register_dataset
from surrogate.training.data.base import refuse_image_size, required

HARMONICS = 8  # Fourier components per unit and manifold dimension


def randman(
    units: int,
    classes: int,
    steps: int,
    manifold_dim: int,
    smoothness: float,
    samples_per_class: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The spike trains (N, steps, units) as uint8 0/1 and their labels (N,), class by class
    (``classes * samples_per_class`` examples); the same arguments give the same arrays."""
    rng = np.random.default_rng(seed)
    harmonic = np.arange(1, HARMONICS + 1)
    decay = harmonic ** -float(smoothness)
    x = np.zeros((classes, samples_per_class, steps, units), dtype=np.uint8)
    sample, unit = np.arange(samples_per_class)[:, None], np.arange(units)[None, :]
    for label in range(classes):
        amplitude = rng.uniform(size=(units, manifold_dim, HARMONICS)) * decay
        phase = rng.uniform(size=(units, manifold_dim, HARMONICS))
        points = rng.uniform(size=(samples_per_class, manifold_dim))
        # (samples, units, dimensions, harmonics) summed over the last two
        angle = 2 * np.pi * (points[:, None, :, None] * harmonic + phase)
        values = np.einsum("udk,nudk->nu", amplitude, np.sin(angle))
        low, high = values.min(axis=0), values.max(axis=0)
        values = (values - low) / np.where(high > low, high - low, 1.0)
        times = np.minimum(np.floor(values * steps).astype(np.int64), steps - 1)
        x[label, sample, times, unit] = 1
    y = np.repeat(np.arange(classes), samples_per_class)
    return x.reshape(classes * samples_per_class, steps, units), y


@register_dataset("randman")
class Randman(DataSet):
    spikes = True

    def shape(self, root, units=None, classes=None, steps=None, image_size=None, **options):
        refuse_image_size(self.name, image_size)
        units, classes, steps = required(self.name, units=units, classes=classes, steps=steps)
        return DataShape((steps, units), classes)

    def read(
        self,
        root,
        shape,
        manifold_dim=None,
        smoothness=None,
        samples_per_class=None,
        generator_seed=None,
        **options,
    ):
        manifold_dim, smoothness, samples_per_class, seed = required(
            self.name,
            manifold_dim=manifold_dim,
            smoothness=smoothness,
            samples_per_class=samples_per_class,
            generator_seed=generator_seed,
        )
        steps, units = shape.input_shape
        x, y = randman(
            units, shape.num_classes, steps, manifold_dim, smoothness, samples_per_class, seed
        )
        source = (
            f"randman (generator_seed={seed}, {shape.num_classes} classes of "
            f"{samples_per_class} samples)"
        )
        return Part(x, y, source, source), None
