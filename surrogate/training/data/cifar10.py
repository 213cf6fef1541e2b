"""CIFAR-10: 32x32 color images in six python batches under ``root/cifar-10-batches-py``
(torchvision's layout); torchvision downloads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from surrogate.training.data import DataShape, FixedShape, Part, register_dataset
from surrogate.training.data.readers import read_cifar_batch

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_folder(root: str | Path) -> Path:
    return Path(root) / "cifar-10-batches-py"


@register_dataset("cifar10")
class CIFAR10(FixedShape):
    SHAPE = DataShape((3, 32, 32), 10)
    can_download = True
    pixel_max = 255.0

    def check_files(self, root, **options):
        missing = [f for f in CIFAR_FILES if not (cifar_folder(root) / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"data: CIFAR-10 not found in {cifar_folder(root)} (looked for "
                f"{', '.join(CIFAR_FILES)}); set data.root to the folder that holds "
                "cifar-10-batches-py, or data.download=true"
            )

    def download(self, root):
        import torchvision

        torchvision.datasets.CIFAR10(root, train=True, download=True)

    def read(self, root, shape, **options):
        self.check_files(root)
        folder = cifar_folder(root)
        batches = [read_cifar_batch(folder / f) for f in CIFAR_FILES]
        train_x = np.concatenate([b[0] for b in batches[:5]])
        train_y = np.concatenate([b[1] for b in batches[:5]])
        train = f"{folder / 'data_batch_1'} to data_batch_5"
        test = folder / "test_batch"
        return Part(train_x, train_y, train, train), Part(*batches[5], test, test)
