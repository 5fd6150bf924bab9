"""TradeTower benchmarks: our engine against its peers, each measured in the same run on the
same data. Run ``python -m bench`` (or ``python bench/run.py``); see :mod:`bench.run`."""
