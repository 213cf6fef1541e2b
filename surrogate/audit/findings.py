"""What ``surrogate.audit`` returns: one ``Finding`` per hard op and module, in a ``Report``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# What PyTorch's autograd gives each hard op: a zero gradient, no graph at all past it (an integer
# or boolean output), or an error in backward.
PYTORCH_GIVES = {
    **dict.fromkeys(("sign", "sgn", "round", "floor", "ceil", "trunc", "fix"), "zero"),
    "heaviside": "error",
    **dict.fromkeys(("argmax", "argmin", "gt", "ge", "lt", "le", "eq", "ne"), "cut"),
}
COMPARISONS = ("gt", "ge", "lt", "le", "eq", "ne")
REMEDIES = {
    "sign": "intercept(sign=...) or surrogate.Sign",
    "sgn": "intercept(sign=...) or surrogate.Sign",
    "heaviside": "intercept(step=...) or surrogate.Step",
    "round": "intercept(round=...) or surrogate.Round",
    "argmax": "intercept(argmax=...) before F.one_hot, or surrogate.ArgMax",
    "argmin": "intercept(argmax=...) before F.one_hot, or surrogate.argmax(-x, ...)",
    **dict.fromkeys(("floor", "ceil"), "intercept(round=...)"),
    **dict.fromkeys(("trunc", "fix"), "x + (op(x) - x).detach(), straight-through"),
    **dict.fromkeys(("gt", "ge", "lt", "le"), "surrogate.step(a - b, ...) for (a > b).float()"),
    **dict.fromkeys(("eq", "ne"), "surrogate.argmax for a one-hot of the maximum"),
}
ROOT = "(model)"  # how the table shows the root module, whose name in named_modules() is ''


@dataclass(frozen=True)
class Finding:
    """A hard op on the gradient path: ``op`` as torch names it, ``module`` the dotted path of the
    module whose forward called it (as in ``named_modules()``, '' for the model itself), ``numel``
    the elements of its inputs summed over its ``calls``, and ``pytorch`` what autograd gives it:
    ``zero``, ``cut`` or ``error``. Comparisons count only when cast to a float dtype, as in
    ``(x > 0).float()``, a hard step."""

    op: str
    module: str
    numel: int
    calls: int = 1

    @property
    def pytorch(self) -> str:
        return PYTORCH_GIVES[self.op]

    @property
    def remedy(self) -> str:
        return REMEDIES[self.op]


@dataclass
class Report:
    """The findings in the order the forward met them, the parameters that get no gradient (or
    only zeros) because of them, and the first line of the error the backward raised, if any.
    Iterating a report gives its findings; ``str(report)`` is a table."""

    findings: list[Finding] = field(default_factory=list)
    dead_parameters: list[str] = field(default_factory=list)
    error: str | None = None
    parameters: int = 0  # how many parameters require grad

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __getitem__(self, i: int) -> Finding:
        return self.findings[i]

    def __str__(self) -> str:
        if not self.findings:
            lines = ["no hard ops on the gradient path"]
        else:
            head = ("op", "module", "elements", "calls", "PyTorch gives", "remedy")
            cells = [head] + [
                (f.op, f.module or ROOT, str(f.numel), str(f.calls), f.pytorch, f.remedy)
                for f in self.findings
            ]
            widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
            right = {2, 3}
            lines = [
                "  ".join(c.rjust(w) if i in right else c.ljust(w)
                          for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                for row in cells
            ]  # fmt: skip
        dead = ", ".join(self.dead_parameters) or "none"
        lines.append(f"dead parameters ({len(self.dead_parameters)} of {self.parameters}): {dead}")
        if self.error:
            lines.append(f"backward raised: {self.error}")
        return "\n".join(lines)
