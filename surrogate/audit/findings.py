"""What ``surrogate.audit`` returns: one ``Finding`` per hard op and module, in a ``Report``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from surrogate.intercept.sites import Modules, Scope, Site

# What PyTorch's autograd gives each hard op: a zero gradient, no graph at all past it (an integer
# or boolean output), or an error in backward.
PYTORCH_GIVES = {
    **dict.fromkeys(("sign", "sgn", "round", "floor", "ceil", "trunc", "fix"), "zero"),
    "heaviside": "error",
    **dict.fromkeys(("argmax", "argmin", "max", "min", "topk"), "cut"),
    **dict.fromkeys(("gt", "ge", "lt", "le", "eq", "ne"), "cut"),
}
ARGMAX = "surrogate.intercept(argmax=...)"
REMEDIES = {
    **dict.fromkeys(("sign", "sgn"), "surrogate.intercept(sign=...) or surrogate.Sign"),
    **dict.fromkeys(("round", "floor", "ceil", "trunc", "fix"), "surrogate.intercept(round=...)"),
    "heaviside": "surrogate.intercept(step=...) or surrogate.Step",
    **dict.fromkeys(("argmax", "argmin", "max", "min", "topk"), ARGMAX),
    **dict.fromkeys(("gt", "ge", "lt", "le"), "surrogate.intercept(step=...)"),
    **dict.fromkeys(("eq", "ne"), "surrogate.argmax for a one-hot of the maximum"),
}
# The intercept keyword of each op it follows, and an estimator to start from.
KEYWORDS = {
    **dict.fromkeys(("sign", "sgn"), "sign"),
    **dict.fromkeys(("round", "floor", "ceil", "trunc", "fix"), "round"),
    **dict.fromkeys(("heaviside", "gt", "ge", "lt", "le"), "step"),
    **dict.fromkeys(("argmax", "argmin", "max", "min", "topk"), "argmax"),
}
SUGGESTED = {"step": "atan", "sign": "atan", "round": "atan", "argmax": "softmax"}
CUT, HANDLED, UNREACHED = "cut", "handled by the model", "does not reach the loss"
STATUSES = (CUT, HANDLED, UNREACHED)
ROOT = "(model)"  # how the table shows the root module, whose name in named_modules() is ''


def label(op: str, module: str) -> str:
    """``sign in encoder``: an op and the module that called it, as the report names them."""
    return f"{op} in {module or ROOT}"


@dataclass(frozen=True)
class Finding:
    """A hard op on the gradient path: ``op`` as written (``x > p`` is ``gt``), ``module`` the
    dotted path of the module whose forward called it ('' for the model itself), ``numel`` the
    elements it decides summed over its ``calls`` (a comparison's broadcast shape, the input of
    the others), and ``pytorch``, what autograd gives it: ``zero``, ``cut`` or ``error``.

    ``status`` is ``handled by the model`` when its input gets a gradient as written anyway (the
    model's own straight-through, ``x + (torch.sign(x) - x).detach()``, or its own
    ``autograd.Function``) or no dead parameter lies upstream of it: no remedy is needed. Else
    ``cut`` when its result, made straight-through, gets a gradient (the ``remedy`` revives what
    it cuts), or ``does not reach the loss`` (a later op cuts it too). ``cuts`` names the dead
    parameters it cuts off.

    ``unfollowed`` says where ``surrogate.intercept`` loses an index on its way to the float
    result (``lost at eq`` for ``idx == e``; ``surrogate.audit.followable``): a cut there needs
    ``surrogate.argmax`` written into the model, and the remedy says so.

    Comparisons, argmax, argmin and the indices of max, min and topk count once a float value is
    made of their result: ``(x > 0).float()``, ``(x > 0) * 1.0``, ``zeros.masked_fill(x > 0, 1)``,
    ``out[x > 0] = 1.0``, ``F.one_hot(i).float()``, ``zeros.scatter_(1, i, 1)``, ``codebook[i]``.
    """

    op: str
    module: str
    numel: int
    calls: int = 1
    status: str = CUT
    cuts: tuple[str, ...] = ()
    site: Site | None = None
    own: str | None = None  # the model's own autograd.Function the op runs in
    unfollowed: str | None = None  # where intercept loses its index: ``lost at eq``

    @property
    def pytorch(self) -> str:
        return PYTORCH_GIVES[self.op]

    @property
    def remedy(self) -> str:
        if self.status == CUT and self.unfollowed is not None:
            return f"surrogate.argmax in the model (intercept cannot follow it: {self.unfollowed})"
        if self.status == CUT:
            return REMEDIES[self.op]
        if self.own is not None:
            return f"none: {self.status} (its autograd.Function {self.own})"
        return f"none: {self.status}"

    @property
    def label(self) -> str:
        return label(self.op, self.module)


@dataclass
class Report:
    """The findings in the order the forward made them; the parameters that get no gradient, or
    only zeros, from the backward as the model is written (``dead_parameters``) and what cut each
    (``causes``: ``cut by <op> in <module>``, ``unrecognised op: <op> in <module>``, ``unrecognised
    op: gradient all zero (first read by <op>)``, ``not on the loss's path (read by <op>)``, ``not
    used in the forward``, ``cut by heaviside in <module>, whose backward raised``, ``zero
    gradient by surrogate.Sign at <module> (estimator 'none')`` for the library's own module with
    that estimator); and the first line of the error the backward raised, if any. ``zeroed`` maps
    each such module that cuts a dead parameter to its op (``sign``); ``swap_remedy`` gives them
    another estimator. Iterating a report gives its findings (torch's hard ops);
    ``str(report)`` is a table and the dead parameters grouped by cause."""

    findings: list[Finding] = field(default_factory=list)
    dead_parameters: list[str] = field(default_factory=list)
    error: str | None = None
    parameters: int = 0  # how many parameters require grad
    causes: dict[str, str] = field(default_factory=dict)
    modules: Modules | None = field(default=None, repr=False)
    zeroed: dict[str, str] = field(default_factory=dict)  # module path -> op, estimator 'none'

    @property
    def scope(self) -> Scope:
        """The cut call sites, for ``surrogate.intercept(..., only=report)``."""
        if self.modules is None:
            raise ValueError("this report was not made by surrogate.audit: it has no call sites")
        sites = (f.site for f in self.findings if f.status == CUT and f.site is not None)
        return Scope(self.modules, sites)

    @property
    def remedy(self) -> str | None:
        """The one-liner that gives estimators to the cut call sites and to no others."""
        followed = [f for f in self.findings if f.status == CUT and f.unfollowed is None]
        keywords = sorted({KEYWORDS[f.op] for f in followed if f.op in KEYWORDS})
        if not keywords:
            return None
        named = ", ".join(f'{k}="{SUGGESTED[k]}"' for k in keywords)
        return f"with surrogate.intercept({named}, only=surrogate.audit(model, x, loss=fn)):"

    @property
    def swap_remedy(self) -> str | None:
        """The one-liner that gives the library's modules in ``zeroed`` the estimator ``ste``
        (``swap`` sets every module of those ops; ``module.estimator = ...`` sets one)."""
        if not self.zeroed:
            return None
        named = ", ".join(f'{op}="ste"' for op in sorted(set(self.zeroed.values())))
        return f"surrogate.swap(model, {named})"

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __getitem__(self, i: int) -> Finding:
        return self.findings[i]

    def __str__(self) -> str:
        if not self.findings:
            torch_ops = "torch hard ops" if self.zeroed else "hard ops"
            lines = [f"no {torch_ops} on the gradient path"]
        else:
            head = ("op", "module", "elements", "calls", "PyTorch gives", "dead", "remedy")
            cells = [head] + [
                (f.op, f.module or ROOT, str(f.numel), str(f.calls), f.pytorch, str(len(f.cuts)),
                 f.remedy)
                for f in self.findings
            ]  # fmt: skip
            widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
            right = {2, 3, 5}
            lines = [
                "  ".join(c.rjust(w) if i in right else c.ljust(w)
                          for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                for row in cells
            ]  # fmt: skip
        dead = len(self.dead_parameters)
        lines.append(f"dead parameters ({dead} of {self.parameters}){':' if dead else ': none'}")
        groups: dict[str, list[str]] = {}
        for name in self.dead_parameters:
            groups.setdefault(self.causes.get(name, "unrecognised op"), []).append(name)
        lines += [f"  {cause}: {', '.join(names)}" for cause, names in groups.items()]
        if self.error:
            lines.append(f"backward raised: {self.error}")
        if self.remedy:
            lines.append(f"remedy (the cut call sites only): {self.remedy}")
        if self.swap_remedy:
            modules = "surrogate's modules with estimator 'none'"
            lines.append(f"remedy ({modules}, not intercept): {self.swap_remedy}")
        return "\n".join(lines)
