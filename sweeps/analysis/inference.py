"""Every test, interval and model the reports use, from one place (issue 19).

The implementations live in four modules by method; import from here.

- significance: exact binomial intervals (Clopper-Pearson; Wilson inside Newcombe's difference),
  the "above chance" tests (pooled exact binomial; t on per-problem values), McNemar, Holm and
  fixed-sequence testing, the Clopper-Pearson interval on the share of seeds that learned.
- resampling: bootstrap intervals over problems (and seeds as clusters): a mean over seeds,
  paired condition differences, exact match against the digits' prediction.
- dose_response: logistic regression of "a seed learned" on log10(params), x50 and its
  profile-likelihood range.
- logistic_fit: the bounded 4-parameter logistic fit of a curve, and the width comparison of
  two metrics over bootstrap replicates.

What each interval guarantees at nominal 0.95, as measured (tests/test_inference.py,
tests/test_dose_response.py; more points: python -m sweeps.analysis.calibrate): Clopper-Pearson,
at least nominal (enumerated); bootstrap_mean_interval, paired_difference with the models fixed
and exact_vs_digits, within 2 SE of nominal at n_eval 100-1000, accuracy 0.1-0.9. The others are
*ranges*, named so in their docstrings: paired_difference with seeds resampled as clusters
(0.77-0.99 with 3 seeds), dose_response's profile range on x50 (0.91-0.95 on 6 sizes x 3-10
seeds) and width_difference (not tested: each replicate costs two curve fits).
"""
from __future__ import annotations

from .dose_response import dose_response
from .logistic_fit import S_MAX, S_MIN, fit_logistic, width_difference
from .resampling import bootstrap_mean_interval, exact_vs_digits, paired_difference
from .significance import (CONF, above_chance_binary, above_chance_values, binom_greater_p,
                           clopper_pearson, fixed_sequence, holm, learned_interval, mcnemar_p,
                           newcombe_diff, wilson)

__all__ = ["CONF", "S_MAX", "S_MIN", "above_chance_binary", "above_chance_values",
           "binom_greater_p", "bootstrap_mean_interval", "clopper_pearson", "dose_response",
           "exact_vs_digits", "fit_logistic", "fixed_sequence", "holm", "learned_interval",
           "mcnemar_p", "newcombe_diff", "paired_difference", "wilson", "width_difference"]
