"""Make `import triton` fail in this Python process and in every process it starts, as on a
laptop where Triton has no wheel (macOS, Windows). Used by CI and tests/test_portable.py:

    PYTHONPATH=scripts/no_triton python -m sweeps.run tiny

Python imports `sitecustomize` from sys.path at start-up, so putting this folder on PYTHONPATH
also reaches the worker processes a sweep spawns."""
import importlib.abc
import sys


class _NoTriton(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "triton" or name.startswith("triton."):
            raise ImportError(f"No module named '{name}' (blocked: scripts/no_triton)")
        return None


sys.meta_path.insert(0, _NoTriton())
