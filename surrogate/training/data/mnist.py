"""The IDX family: MNIST, Fashion-MNIST and KMNIST, 28x28 gray images in four IDX files (gzipped
or not), found flat in ``root`` (as Debian's ``dataset-fashion-mnist`` installs them in
/usr/share/datasets/fashion-mnist) or in torchvision's layout ``root/<Name>/raw``; torchvision
downloads them. Fashion-MNIST is also looked for where Debian's package puts it, after ``root``, so
``python train.py data=fashion_mnist`` runs as written on a machine that has the package."""

from __future__ import annotations

from pathlib import Path

from surrogate.training.data import DataShape, FixedShape, Part, register_dataset
from surrogate.training.data.readers import read_idx

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
STEMS = (*IDX_FILES["train"], *IDX_FILES["test"])


class IdxImages(FixedShape):
    SHAPE = DataShape((1, 28, 28), 10)
    can_download = True
    pixel_max = 255.0
    folder = ""  # torchvision's class, and its folder under root
    system_folder: str | None = None  # where a system package installs the files, if any

    def folders(self, root: str | Path) -> list[Path]:
        system = [Path(self.system_folder)] if self.system_folder else []
        return [Path(root), Path(root) / self.folder / "raw", Path(root) / self.folder, *system]

    def find(self, root: str | Path) -> dict[str, Path] | None:
        """The four files in the first folder that holds them all, or None."""
        for base in self.folders(root):
            found = {}
            for stem in STEMS:
                hits = [base / (stem + e) for e in ("", ".gz") if (base / (stem + e)).is_file()]
                if hits:
                    found[stem] = hits[0]
            if len(found) == len(STEMS):
                return found
        return None

    def check_files(self, root, **options):
        if self.find(root) is None:
            folders = ", ".join(map(str, self.folders(root)))
            stems = ", ".join(f"{s}[.gz]" for s in STEMS)
            raise FileNotFoundError(
                f"data: {self.name} not found; looked in {folders} for {stems}; set data.root to "
                "the folder that holds them, or data.download=true"
            )

    def download(self, root):
        import torchvision

        getattr(torchvision.datasets, self.folder)(root, train=True, download=True)

    def read(self, root, shape, **options):
        self.check_files(root)
        found = self.find(root)
        x, y, test_x, test_y = (found[stem] for stem in STEMS)
        return (
            Part(read_idx(x)[:, None], read_idx(y), x, y),
            Part(read_idx(test_x)[:, None], read_idx(test_y), test_x, test_y),
        )


@register_dataset("mnist")
class MNIST(IdxImages):
    folder = "MNIST"


@register_dataset("fashion_mnist")
class FashionMNIST(IdxImages):
    folder = "FashionMNIST"
    system_folder = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


@register_dataset("kmnist")
class KMNIST(IdxImages):
    folder = "KMNIST"
