"""The analysis of sweep results: it reads run folders alone (results.jsonl, curves.jsonl,
config.json), so it works on any model family's results, ours or published ones.

    stats.py                 sampling error: binomial intervals, bootstrap, logistic fits
    emergence.py             where an ability leaves chance (Wei et al. 2022), the metric
                             question (Schaeffer et al. 2023)
    compare.py               conditions compared ability by ability
    tables.py, plots.py      the terminal tables and the figures
    emergence_report.py      the report of each kind (sweeps.report dispatches to them by the
    icl_report.py            kind that config.json records)
    instructions_report.py

Nothing here imports the running side except its readers (sweeps.results, sweeps.validate).
"""
