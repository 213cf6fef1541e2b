"""``python -m surrogate.audit``: what autograd gives common non-differentiable ops at their kink
and away from it, and the remedy for each (the table of ``surrogate.kinks``)."""

from surrogate.kinks import main

main()
