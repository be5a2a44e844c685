"""Scale sweeps: named sweep specs, the crash-safe runner, emergence analysis and reports."""
