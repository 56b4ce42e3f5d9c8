"""fxcrawl's benchmark suite: ``python -m benchmarks`` (or ``make bench``).

Every figure is measured beside its baseline in the same run and reported as a ratio; the
PASS/MISS column is informational. See benchmarks/README.md.
"""
