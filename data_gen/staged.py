"""A training stream in stages: one stream per stage, switched at fixed step boundaries.

Instruction tuning (FLAN, T0) is a second stage after pre-training: the same model, a different
mixture. `StagedStream` serves stage i's batches for steps bounds[i-1] .. bounds[i]-1. It counts
the batches it has served, and that count is the trainer's step; both go into the checkpoint, so a
run stopped mid-stage resumes in the stage its step falls in, with that stage's data exactly where
it stopped (tests/test_stages.py interrupts runs to check it).
"""
from __future__ import annotations

import bisect
from typing import Sequence


class StagedStream:
    def __init__(self, streams: Sequence, bounds: Sequence[int]):
        """`streams[i]` serves the steps before `bounds[i]` (and from bounds[i-1]); the last bound
        is the run's length, after which the last stream keeps serving."""
        if not streams or len(streams) != len(bounds):
            raise ValueError(f"need one end step per stream, got {len(streams)} streams and "
                             f"{len(bounds)} bounds")
        if list(bounds) != sorted(bounds) or bounds[0] < 1 or len(set(bounds)) != len(bounds):
            raise ValueError(f"stage ends must be increasing positive steps, got {list(bounds)}")
        self.streams, self.bounds = list(streams), list(bounds)
        self.step = 0

    def stage_at(self, step: int) -> int:
        """The stage that trains step `step` (0-based)."""
        return min(bisect.bisect_right(self.bounds, step), len(self.bounds) - 1)

    @property
    def stage(self) -> int:
        return self.stage_at(self.step)

    def next_batch(self):
        batch = self.streams[self.stage].next_batch()
        self.step += 1
        return batch

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        return {"step": self.step, "bounds": list(self.bounds),
                "streams": [s.state_dict() for s in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        """Restore the step and the streams of the stages that have served batches. Streams of
        later stages keep their fresh state, so a checkpoint taken at a stage boundary can start a
        run whose later stages train another mixture (the runner shares pre-training that way)."""
        used = [i for i in range(len(self.bounds)) if (self.bounds[i - 1] if i else 0) < state["step"]]
        if state["bounds"][: len(used)] != self.bounds[: len(used)]:
            raise ValueError(f"checkpoint stages end at {state['bounds']}, this run's at "
                             f"{self.bounds}: not the same run")
        self.step = state["step"]
        for i in used:
            self.streams[i].load_state_dict(state["streams"][i])
