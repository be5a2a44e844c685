"""python -m data_gen.chance_table [TASK ...]: every task's chance levels (data_gen.chance) as the
markdown table of docs/results-schema.md, with the best guesses found and how each was computed."""
from __future__ import annotations

import argparse
import sys

from . import make_task
from .chance import chance_details

DOC_TASKS = ("add2", "add3", "add3-rev", "add5", "add8", "sub2", "sub3", "sub3-rev", "mul2", "mul3",
             "mul4", "add3-scratch", "add2-words", "mod7-add", "mod13-add", "mod97-add", "mod97-sub",
             "mod97-mul", "mod97-div", "mod97-poly", "mod113-poly", "icl-op2", "icl-rule7",
             "icl-rule29")


def _cell(value: float, se: float, digits: int = 4) -> str:
    text = f"{value:.{digits}g}"
    return text if se == 0 else f"{text} ± {se:.1g}"


def format_table(names) -> str:
    """The markdown table of docs/results-schema.md: each task's chance levels (± a standard
    error where sampled) and the best guesses found."""
    lines = ["| task | exact match (guess) | per-digit acc. (guess) | edit distance (guess) | "
             "answer log-prob (nats) | edit-distance search |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in names:
        c = chance_details(make_task(name, eval_size=1))
        cells = [f"{_cell(c.levels[m], c.se[m])} (`{c.guess[m]}`)"
                 for m in ("exact_match", "per_digit_acc", "edit_distance")]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " | "
                     f"{_cell(c.levels['answer_logprob'], c.se['answer_logprob'])} | "
                     f"{c.how['edit_distance']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_gen.chance_table",
                                     description="Print tasks' chance levels as a markdown table.")
    parser.add_argument("tasks", nargs="*", default=list(DOC_TASKS), help="task names")
    args = parser.parse_args(argv)
    try:
        print(format_table(args.tasks))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
