"""Fused elementwise kernels: a formula's passes over memory become one.

``call(fn, *args)`` returns ``fn(*args)``, where ``fn`` is an elementwise formula of the tensors in
``args`` (the other arguments are constants hashable by value, such as an op or an estimator) that
returns a tensor or a tuple of tensors shaped like its inputs. Run eagerly, every elementwise op of
a formula is one pass over memory and one temporary: a bump's backward takes five to ten. For large
tensors ``call`` runs the same formula compiled by ``torch.compile`` into one loop (C++ with OpenMP
on CPU, Triton on CUDA) that reads each input once and writes each output once. A kernel is compiled
once per formula, constants, dtypes, device and CPU thread count (the C++ loop is built for a thread
count), takes any length (``dynamic=True``), and has a code object of its own, so dynamo's limit on
recompiles per code object is never reached however many kernels there are.

The compiled kernel runs only where it pays and is safe: at least ``thresholds[device]`` elements
(2^22 on CPU, above every activation of the training app's networks; 2^25 on CUDA) in plain dense
tensors of one shape and layout on CPU or CUDA, with grad mode off (a hard op's
forward, or a backward without ``create_graph``). It is skipped while ``torch.compile`` traces the
caller (which fuses the formula into its own graph) and under a TorchFunctionMode or
TorchDispatchMode (which would be bypassed). Everywhere else, and for good once a compile fails
(no C++ compiler, no Triton; one warning), the formula runs eagerly, so both paths compute the same
formulas: hard forwards agree bit for bit, smooth ones to rounding. ``SURROGATE_FUSED=0`` in the
environment turns the compiled path off.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Tensor = torch.Tensor

enabled = os.environ.get("SURROGATE_FUSED", "1") != "0"
# The smallest tensor, in elements, that runs compiled, per device type (a device type left out:
# never). A compiled call pays a fixed cost (dynamo's guards, the AOT wrapper, the launcher) and a
# process compiles each kernel once (seconds apiece); it pays where the calls it speeds up repay
# both. Measured on a 2-core CPU and an H100 (docs/benchmarks.md):
# - CPU, 2^22: inside the training steps of the app's networks (benchmarks/fused_training.py; their
#   hard-op layers have at most 401,408 elements) compiled kernels made a whole step 0.99-1.05x the
#   eager one, while compiling made a Fashion-MNIST run 1.31x as long on a warm cache and 2.22x on a
#   cold one (benchmarks/throughput.py). From 2^22 up a compiled forward plus backward saves 30 ms
#   or more a call (benchmarks/fused_threshold.py), so a run repays the compile.
# - CUDA, 2^25: the eager kernels are launch-bound up to 2^23; compiled calls break even at 2^24
#   and are faster from 2^25 (benchmarks/fused_threshold.py --device cuda).
thresholds = {"cpu": 2**22, "cuda": 2**25}
failure: str | None = None  # why the compiled path was turned off, if a compile failed


@dataclass
class Kernel:
    """One compiled formula, its output dtypes, and its compile time once it has run."""

    name: str
    compiled: Callable[..., None]
    out_dtypes: tuple[torch.dtype, ...]
    returns_tuple: bool
    compile_seconds: float | None = None


_kernels: dict[tuple, Kernel] = {}


def kernels() -> list[Kernel]:
    """The kernels compiled so far in this process, in order."""
    return list(_kernels.values())


def call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, as one compiled kernel where that pays (see the module docstring)."""
    if torch.compiler.is_compiling() or not enabled:
        return fn(*args)
    tensors = [a for a in args if isinstance(a, Tensor)]
    if not _eligible(tensors):
        return fn(*args)
    kernel = _kernels.get(key := _key(fn, args, tensors))
    if kernel is None:
        try:
            kernel = _kernels[key] = _build(fn, args, len(_kernels))
        except Exception as exc:  # torch.compile refused outright (e.g. an unsupported Python)
            _turn_off(exc)
            return fn(*args)
    first = tensors[0]
    outs = tuple(torch.empty_like(first, dtype=dtype) for dtype in kernel.out_dtypes)
    flat = [_flat(t) for t in (*tensors, *outs)]
    if kernel.compile_seconds is not None:
        kernel.compiled(*flat)
    else:
        start = time.perf_counter()
        try:
            kernel.compiled(*flat)
        except Exception as exc:  # no compiler, no Triton, or a formula dynamo cannot trace
            _turn_off(exc)
            return fn(*args)
        kernel.compile_seconds = time.perf_counter() - start
    return outs if kernel.returns_tuple else outs[0]


def _eligible(tensors: list[Tensor]) -> bool:
    if not tensors or torch.is_grad_enabled():
        return False
    first = tensors[0]
    if first.numel() < thresholds.get(first.device.type, math.inf):
        return False
    if not first.is_floating_point() or not _dense(first):
        return False
    for t in tensors:
        if type(t) is not Tensor or t.device != first.device:
            return False
        if t.shape != first.shape or t.stride() != first.stride():
            return False
    return torch._C._len_torch_function_stack() == 0 and torch._C._len_torch_dispatch_stack() == 0


def _dense(t: Tensor) -> bool:
    """Whether ``t`` covers one block of memory with no gaps or overlaps, in any order of dims."""
    if t.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((st, n) for n, st in zip(t.shape, t.stride(), strict=True) if n > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _flat(t: Tensor) -> Tensor:
    """The elements of a dense ``t`` as a 1-D view in memory order."""
    return t.view(-1) if t.is_contiguous() else t.as_strided((t.numel(),), (1,))


def _key(fn: Callable[..., Any], args: tuple, tensors: list[Tensor]) -> tuple:
    # A bound method hashes by its object's identity; key it by the object's value instead, so an
    # equal estimator built anew (surrogate.step(x, "atan") builds one per call) reuses the kernel.
    target = (fn.__func__, fn.__self__) if isinstance(fn, types.MethodType) else fn
    layout = tuple(a.dtype if isinstance(a, Tensor) else a for a in args)
    first = tensors[0]
    threads = torch.get_num_threads() if first.device.type == "cpu" else 0
    return target, layout, first.device, threads, torch.is_inference_mode_enabled()


def _build(fn: Callable[..., Any], args: tuple, number: int) -> Kernel:
    """Compile ``fn`` for arguments like ``args``: the kernel takes the tensors flattened, then the
    outputs to fill."""
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    template = [None if isinstance(a, Tensor) else a for a in args]
    n_in = len(positions)
    meta = [torch.empty(0, dtype=a.dtype, device="meta") if i in positions else a
            for i, a in enumerate(args)]  # fmt: skip
    result = fn(*meta)
    returns_tuple = isinstance(result, tuple)
    out_dtypes = tuple(r.dtype for r in (result if returns_tuple else (result,)))

    def kernel(*flat):
        full = list(template)
        for i, t in zip(positions, flat[:n_in], strict=True):
            full[i] = t
        values = fn(*full)
        for out, value in zip(flat[n_in:], values if returns_tuple else (values,), strict=True):
            out.copy_(value)

    name = f"surrogate_kernel_{number}_{getattr(fn, '__name__', 'formula')}"
    # Dynamo keeps compiled graphs, and counts recompiles, per code object: give each its own.
    code = kernel.__code__.replace(co_name=name)
    own = types.FunctionType(code, kernel.__globals__, name, None, kernel.__closure__)
    compiled = torch.compile(own, dynamic=True, fullgraph=True)
    _import_cpp_extension_quietly()
    return Kernel(name, compiled, out_dtypes, returns_tuple)


CPP_EXTENSION = "torch.utils.cpp_extension"


def _import_cpp_extension_quietly() -> None:
    """Import ``torch.utils.cpp_extension`` (inductor's CPU compile does, once) without its
    import-time warning ``No CUDA runtime is found, using CUDA_HOME=...``, which a CPU-only torch
    logs wherever a CUDA toolkit is installed: it concerns building CUDA extensions, which the
    fused kernels never do. The module is the same, its ``CUDA_HOME`` too; nothing else is
    hidden."""
    if CPP_EXTENSION in sys.modules:
        return
    logger = logging.getLogger(CPP_EXTENSION)

    def drop(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No CUDA runtime is found")

    logger.addFilter(drop)
    try:
        importlib.import_module(CPP_EXTENSION)
    finally:
        logger.removeFilter(drop)


def _turn_off(exc: Exception) -> None:
    global enabled, failure
    enabled = False
    failure = f"{type(exc).__name__}: {exc}".splitlines()[0]
    warnings.warn(
        f"surrogate: compiling a fused kernel failed ({failure}); running the eager formulas "
        "from now on (slower for large tensors, same results)",
        RuntimeWarning,
        stacklevel=3,
    )
