"""scikit-learn's 8x8 handwritten digits: they ship with scikit-learn (no files, no download) and
have no test split (``data.test_fraction`` of them is held out)."""

from __future__ import annotations

import numpy as np

from surrogate.training.data import DataShape, FixedShape, Part, register_dataset


@register_dataset("digits")
class Digits(FixedShape):
    SHAPE = DataShape((1, 8, 8), 10)
    pixel_max = 16.0  # gray levels 0 to 16

    def read(self, root, shape, **options):
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = digits.images[:, None].astype(np.float32)
        source = "scikit-learn digits"
        return Part(images, digits.target, f"{source} (images)", f"{source} (labels)"), None
