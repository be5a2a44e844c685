"""The analysis of sweep results: it reads run folders alone (results.jsonl, curves.jsonl,
config.json), so it works on any model family's results, ours or published ones.

    inference.py             every test, interval and model, re-exported from significance.py,
                             resampling.py, dose_response.py and logistic_fit.py
    curves.py                result rows as curves of (condition, task, shots, metric)
    emergence.py             per size: above chance? how many seeds learned? and Wei et al.
                             (2022)'s verdict; stability.py its stability range; shape.py the
                             curve's shape
    metric_question.py       Schaeffer et al. (2023)'s question: the ability or the metric?
    compare.py               conditions compared on the same problems
    tables.py, sections.py,  the terminal tables, the report's shared sections, number format,
    fmt.py, plots.py         the figures; summary.py report/summary.json; samples.py, hparams.py
    emergence_report.py      the report of each kind (sweeps.report dispatches to them by the
    icl_report.py            kind that config.json records); instructions_measures.py the
    instructions_report.py   instruction report's pooled measures
    simulate.py, calibrate.py  synthetic rows from known populations, and the calibration table

Nothing here imports the running side except its readers (sweeps.results, sweeps.validate).
"""
