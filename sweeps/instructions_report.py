"""python -m sweeps.instructions_report RUN_DIR: the older name of `python -m sweeps.report RUN_DIR`
for an instructions run; it refuses, writing nothing, a folder whose report kind is not
"instructions"."""
import sys

from .report import main

if __name__ == "__main__":
    sys.exit(main(kind="instructions"))
