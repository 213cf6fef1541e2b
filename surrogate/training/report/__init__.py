"""A sweep's comparison: ``sweep`` (the table and the figures), ``significance`` (whether two
configurations differ), ``sweep_plan`` (the jobs a sweep set out to run) and ``estimator_figure``
(every estimator's backward in one PNG).

    python -m surrogate.training.report SWEEP_DIR   # or one run's own folder
"""
