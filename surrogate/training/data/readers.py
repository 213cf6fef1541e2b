"""The file readers the data sets share, and the check every data set's arrays pass. Each raises
DataError naming the file and what is wrong with it."""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from surrogate.training.data.base import DataError, dims


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a numpy array.

    Raises DataError, naming the file, if it is empty, a truncated or corrupt gzip, not an
    unsigned-byte IDX file, or holds more or fewer bytes than its header declares.
    """
    data = path.read_bytes()
    if not data:
        raise DataError(f"{path}: file is empty")
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
            raise DataError(f"{path}: truncated or corrupt gzip file ({err})") from None
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(
            f"{path}: not an unsigned-byte IDX file (magic 0x{data[:4].hex()} found, "
            "expected 0x000008 then the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: too short for an IDX header of {ndim} dimensions "
            f"({len(data)} bytes, expected at least {header})"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape)
    if len(data) != expected:
        fault = "truncated" if len(data) < expected else "trailing data"
        raise DataError(
            f"{path}: {fault}: expected {expected} bytes (a {header}-byte header and shape "
            f"{dims(shape)}), found {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python batch as (images NCHW, labels); DataError, naming the file, if bad."""
    raw = path.read_bytes()
    try:
        batch = pickle.loads(raw, encoding="latin1")
    except Exception as err:
        raise DataError(
            f"{path}: not a readable CIFAR-10 batch (truncated or corrupt pickle: "
            f"{type(err).__name__}: {err})"
        ) from None
    missing = [k for k in ("data", "labels") if not isinstance(batch, dict) or k not in batch]
    if missing:
        raise DataError(f"{path}: not a CIFAR-10 batch (no {' or '.join(map(repr, missing))})")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if labels.ndim != 1:
        raise DataError(f"{path}: 'labels' of shape {labels.shape} found, expected a list")
    expected = len(labels) * 3 * 32 * 32
    if data.size != expected:
        raise DataError(
            f"{path}: 'data' holds {data.size} values; expected {expected} "
            f"({len(labels)} labels x 3x32x32)"
        )
    return data.reshape(-1, 3, 32, 32), labels
