"""Joining a Ray cluster for `python -m sweeps.run --ray [ADDRESS]`, and checking before anything
starts that it has what every unit of the sweep needs.

Ray is an optional extra (`pip install -e ".[ray]"`): nothing here imports it until a sweep asks
for it (`import_ray`), so a user without Ray sees no change. With no address a local instance is
started (its processes end with this one); `auto`, `HOST:PORT` or `ray://HOST:PORT` joins a running
cluster (Ray's own address forms: docs.ray.io, "Configuring Ray", ray.init).

What a unit asks of the cluster, and what is refused before anything is written:
- a CPU sweep: each unit asks for its thread count in CPUs (the thread count the local worker
  pool would give it with the same flags, so that the rows equal the pool's) and for the memory of
  the sweep's largest unit by minigpt.flops.estimate_run; a cluster with no node that large is
  refused;
- a GPU sweep: each unit asks for one GPU; a cluster without GPUs is refused, and so is one whose
  GPU (measured by a probe task on a GPU node) has less memory than the largest size's estimate.
The probe also resolves the attention and LayerNorm kernels where the units will run (the driver
may have no GPU) and checks that the node sees `--storage`.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from minigpt.config import GPTConfig
from minigpt.flops import estimate_run

RAY_INSTALL = 'pip install -e ".[ray]"  (or: pip install "ray>=2.60")'
PROBE_TIMEOUT_S = 300  # a busy cluster may make the probe wait for a free slot


class RayUnavailable(RuntimeError):
    """--ray was asked for, but Ray is not installed here."""


def import_ray():
    """The `ray` module, or RayUnavailable naming the command that installs it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"--ray needs Ray, which is not installed here; install it with "
                             f"{RAY_INSTALL}") from None
    return ray


@dataclass(frozen=True)
class Node:
    host: str
    ip: str
    cpus: float
    gpus: float
    memory: float  # bytes Ray may give to tasks on this node


@dataclass(frozen=True)
class Cluster:
    """A Ray connection: where it goes, its live nodes, and whether every node is this machine
    (then the units can keep their checkpoints in the run folder itself, as the local pool does)."""
    name: str      # how messages call it
    nodes: tuple[Node, ...]
    local: bool

    def describe(self) -> str:
        cpus, gpus = sum(n.cpus for n in self.nodes), sum(n.gpus for n in self.nodes)
        return (f"{self.name}: {len(self.nodes)} node{'s' if len(self.nodes) > 1 else ''}, "
                f"{cpus:g} CPUs, {gpus:g} GPUs, {sum(n.memory for n in self.nodes) / 2**30:.1f} "
                f"GiB of task memory")

    def device(self, name: str) -> str:
        """--device for units that run on the cluster: auto is cuda when it has a GPU. Each unit
        is given one GPU by Ray, so cuda:N has no meaning here."""
        gpus = sum(n.gpus for n in self.nodes)
        if name == "auto":
            return "cuda" if gpus else "cpu"
        if name == "cuda" and not gpus:
            raise ValueError(f"--device cuda: {self.describe()} has no GPU; run with --device "
                             f"cpu (or auto), or join a cluster with GPUs")
        if name in ("cpu", "cuda"):
            return name
        raise ValueError(f"--device {name}: with --ray each run is given one GPU by Ray; valid: "
                         f"auto, cpu, cuda")


def connect(address: str) -> Cluster:
    """Start a local instance ("local") or join the cluster at `address`; reuses a connection
    this process already holds (a notebook, the tests)."""
    ray = import_ray()
    name = "the Ray instance this process had joined"
    if not ray.is_initialized():
        name = "a local Ray instance" if address == "local" else f"the Ray cluster at {address}"
        try:
            if address == "local":
                ray.init(address="local", include_dashboard=False)
            else:
                ray.init(address=address)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ValueError(f"--ray {address}: could not join a Ray cluster ({exc}); start one "
                             f"with `ray start --head` (docs/tutorial.md), or give --ray alone "
                             f"for a local instance") from None
    nodes = tuple(Node(n["NodeManagerHostname"], n["NodeManagerAddress"],
                       n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0),
                       n["Resources"].get("memory", 0)) for n in ray.nodes() if n["Alive"])
    here = {"127.0.0.1", ray.util.get_node_ip_address()}
    local = not address.startswith("ray://") and all(n.ip in here for n in nodes)
    return Cluster(name, nodes, local)


def sweep_memory(cfg, device_type: str) -> tuple[str, float]:
    """The size whose unit needs the most memory, and its estimated peak bytes
    (minigpt.flops.estimate_run)."""
    t = cfg.train
    need = {size: estimate_run(GPTConfig.from_size(size, block_size=t.seq_len), t.steps,
                               t.batch_size, t.seq_len, device_type)["bytes"] for size in cfg.sizes}
    largest = max(need, key=need.get)
    return largest, need[largest]


def check_resources(cluster: Cluster, cfg, device_type: str, threads: int) -> None:
    """Refuse (ValueError) a cluster on which some unit could never be scheduled."""
    largest, need = sweep_memory(cfg, device_type)
    if device_type == "cpu":
        cpus = max(n.cpus for n in cluster.nodes)
        if cpus < threads:
            raise ValueError(f"each run asks for {threads} CPUs (its thread count) but the largest "
                             f"node of {cluster.describe()} has {cpus:g}; lower OMP_NUM_THREADS "
                             f"or raise --workers")
        memory = max(n.memory for n in cluster.nodes)
        if need > memory:
            raise ValueError(f"size {largest} needs an estimated {need / 2**30:.1f} GiB, more "
                             f"than the {memory / 2**30:.1f} GiB that Ray may give a task on any "
                             f"node of {cluster.describe()}; lower --batch-size")


def task_resources(device_type: str, threads: int, memory: float) -> dict:
    """What a unit asks Ray for: its threads in CPUs and `memory`, or one GPU. Every unit of a
    sweep asks for the same (the largest unit's memory): Ray keeps queued tasks in the order they
    were submitted only among tasks that ask for the same resources, and the largest models must
    start first."""
    if device_type == "cuda":
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": threads, "memory": max(1, int(memory))}


def probe_node(device: str, attn: str, norm: str, storage: str | None) -> dict:
    """On a worker: the node's name, its GPU and the kernels that will run there, or `error`."""
    import ray
    import torch

    from kernels import resolve_attention, resolve_norm

    info = {"host": socket.gethostname(), "ip": ray.util.get_node_ip_address()}
    try:
        info["attn"], info["norm"] = resolve_attention(attn, device)[0], resolve_norm(norm, device)[0]
    except ValueError as exc:
        info["error"] = str(exc)
    if torch.device(device).type == "cuda":
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_memory"] = float(torch.cuda.get_device_properties(0).total_memory)
        else:
            info["error"] = "Ray gave the probe a GPU, but torch sees no CUDA device there"
    if storage is not None and not os.path.isdir(storage):
        info["error"] = (f"--storage {storage} is not visible on node {info['host']}; give a "
                         f"folder on a filesystem that every node mounts at the same path")
    return info


def probe(cluster: Cluster, cfg, device: str, threads: int, storage: Path | None) -> dict:
    """Run probe_node where a unit would run and refuse (ValueError) what it finds wrong; on a GPU
    cluster also the largest size's memory against the probed GPU's."""
    ray = import_ray()
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    resources = task_resources(device_type, threads, sweep_memory(cfg, device_type)[1])
    remote = ray.remote(probe_node).options(max_retries=0, **resources)
    ref = remote.remote(device, cfg.attn, cfg.norm, None if storage is None else str(storage))
    try:
        info = ray.get(ref, timeout=PROBE_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        return {"error": None, "note": f"no slot for a probe within {PROBE_TIMEOUT_S}s; kernels "
                                       f"and GPU memory are checked on each node as units start"}
    except ray.exceptions.RayError as exc:
        raise ValueError(f"a probe task on {cluster.describe()} failed ({exc.__class__.__name__}: "
                         f"{str(exc).strip().splitlines()[-1]}); every node needs this project "
                         f"installed (the same checkout)") from None
    if info.get("error"):
        raise ValueError(info["error"])
    if "gpu_memory" in info:
        largest, need = sweep_memory(cfg, "cuda")
        if need > info["gpu_memory"]:
            raise ValueError(f"size {largest} needs an estimated {need / 2**30:.0f} GiB, more than "
                             f"the {info['gpu_memory'] / 2**30:.0f} GiB of the cluster's "
                             f"{info['gpu']}; lower --batch-size")
    return info
