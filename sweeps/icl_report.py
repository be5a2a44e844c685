"""python -m sweeps.icl_report RUN_DIR: the older name of `python -m sweeps.report RUN_DIR` for an
in-context-learning run; it refuses, writing nothing, a folder whose report kind is not "icl"."""
import sys

from .report import main

if __name__ == "__main__":
    sys.exit(main(kind="icl"))
