"""Training-step speed of the ACLNet GCN: cross-entropy only versus full ACLNet, and the overhead.

Both variants are `SkeletonModel`s with the same backbone and classifier weights (published architecture
unless --preset); the ACLNet variant adds the two projections, Inter-ACL with Motion Families and FAT
(released rules, K = 10) and Intra-ACL. A step is the trainer's own `Trainer.train_step` (forward, CE
and both losses, backward, SGD with Nesterov momentum and weight decay, cosine schedule) on batches
already on the device. Before timing, warm-up steps bring ACLNet onto its real loss path: statistics
during epoch `start_epoch`, then the next epoch (families rebuilt at its first step) until the memory
is full (memory 512 on CUDA, the released NTU-60 size; 64 on CPU, i.e. 8 batches of 8, so that the
warm-up fits a short CPU run; at these sizes the memory's share of the step is negligible); the timed
steps are later steps of that epoch. CE and ACLNet blocks alternate, so machine
load affects both alike; rates are medians over the repeats. Peak memory: the CUDA allocator's peak,
or on CPU the process's peak resident set (getrusage; CPU allocations are cached by the C library,
so a per-step figure would say little, and it covers both variants). On CUDA every timed step runs under
`torch.cuda.set_sync_debug_mode("error")`, so any host synchronisation in a step raises.

    python benchmarks/train_step.py                     # CPU: batch 8 x 2 persons x 32 frames x 25 joints, fp32
    python benchmarks/train_step.py --device cuda       # NTU shape, batch 64 x 2 x 100 x 25: fp32, bf16, bf16-compile
    python benchmarks/train_step.py --out benchmarks/results/train_step_cpu.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import Tensor

from aclnet.config.schema import DataConfig, ExperimentConfig, OptimConfig, TrainConfig
from aclnet.engine.distributed import DistInfo
from aclnet.engine.run_folder import RunFolder
from aclnet.engine.trainer import Trainer
from aclnet.fileio import atomic_write_bytes, atomic_write_csv
from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss
from aclnet.models import ACLNetGCN
from aclnet.models.skeleton_model import SkeletonModel, projected_loss
from aclnet.skeleton import get_layout

MODES = {"fp32": (False, False), "bf16": (True, False), "bf16-compile": (True, True)}  # (autocast, compile)
DEFAULTS = {  # per device: batch, frames, memory size, timed steps per block, repeats, modes
    "cpu": {"batch": 8, "frames": 32, "memory": 64, "steps": 1, "repeats": 9, "modes": "fp32", "threads": 1},
    "cuda": {"batch": 64, "frames": 100, "memory": 512, "steps": 5, "repeats": 7, "modes": ",".join(MODES),
             "threads": None},
}
VARIANTS = ("ce", "aclnet")
START_EPOCH = 30
EMBEDDING_DIM = 256
DISTINCT_BATCHES = 4  # cycled; a memory of several batches then holds positives for every anchor
MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; shape, memory, steps and modes default by device."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--modes", help="comma-separated of fp32, bf16, bf16-compile (bf16 needs cuda); "
                                        "default: fp32 on cpu, all three on cuda")
    parser.add_argument("--batch", type=int, help="samples per step (default 8 on cpu, 64 on cuda)")
    parser.add_argument("--persons", type=int, default=2)
    parser.add_argument("--frames", type=int, help="frames per sample (default 32 on cpu, 100 on cuda)")
    parser.add_argument("--layout", default="nturgb+d", help="skeleton layout (25 joints by default)")
    parser.add_argument("--classes", type=int, default=60)
    parser.add_argument("--memory", type=int, help="Intra-ACL memory size (default 64 on cpu, 512 on cuda)")
    parser.add_argument("--preset", default=None, help="backbone preset (default: the published architecture)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default 1 on cpu: on a shared machine "
                                                    "more threads than idle cores slow each step many times over; "
                                                    "torch's choice on cuda)")
    parser.add_argument("--steps", type=int, help="timed steps per block (default 1 on cpu, 5 on cuda)")
    parser.add_argument("--repeats", type=int, help="timed blocks per variant (default 9 on cpu, 7 on cuda)")
    parser.add_argument("--warmup", type=int, default=2, help="least untimed steps per variant")
    parser.add_argument("--compile-target", choices=("backbone", "model"), default="backbone",
                        help="what bf16-compile compiles")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows to this .csv or .json file")
    parser.add_argument("--append", action="store_true", help="add to the rows already in --out (CSV)")
    args = parser.parse_args(argv)
    for key, value in DEFAULTS[args.device].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject options that cannot run, naming the option."""
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown or not args.modes:
        parser.error(f"--modes: unknown or no modes {unknown}; valid: {', '.join(MODES)}")
    if args.device == "cpu" and any(MODES[m][0] for m in args.modes):
        parser.error("--modes: bf16 modes need --device cuda (the trainer uses autocast on CUDA only)")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    for name in ("batch", "persons", "frames", "classes", "memory", "steps", "repeats", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.memory < args.batch:
        parser.error(f"--memory {args.memory} must hold at least one batch ({args.batch})")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.out is not None and args.out.suffix not in (".csv", ".json"):
        parser.error(f"--out {args.out}: must end in .csv or .json")
    if args.append and (args.out is None or args.out.suffix != ".csv"):
        parser.error("--append needs --out FILE.csv")


@dataclass
class Row:
    """One variant in one mode: the measured rates, the overhead of ACLNet over CE and peak memory."""

    device: str
    device_name: str
    torch: str
    mode: str
    variant: str
    preset: str
    batch: int
    persons: int
    frames: int
    joints: int
    classes: int
    memory_size: int
    threads: int
    steps: int
    repeats: int
    parameters: int | None = None
    samples_per_s: float | None = None
    step_ms: float | None = None
    samples_per_cpu_s: float | None = None
    overhead_pct: float | None = None
    overhead_cpu_pct: float | None = None
    peak_mib: float | None = None
    step_peak_mib: float | None = None
    peak_kind: str = ""
    status: str = "ok"


@dataclass
class Variant:
    """A model with its trainer and what its timed blocks measured."""

    name: str
    model: SkeletonModel
    trainer: Trainer
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak: list[int] = field(default_factory=list)
    step_peak: list[int] = field(default_factory=list)


# ---- memory ----------------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory: on CUDA the allocator's peak during a timed block and its rise over the memory in
    use when the block started; on CPU the process's peak resident set (getrusage), for the whole run."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda max_memory_allocated per block" if device.type == "cuda" else "process peak RSS"

    def start(self) -> int | None:
        """Reset the CUDA peak; bytes allocated now (None on CPU, where the peak is the process's)."""
        if self.device.type != "cuda":
            return None
        torch.cuda.reset_peak_memory_stats(self.device)
        return torch.cuda.memory_allocated(self.device)

    def peak(self) -> int:
        """Peak bytes since `start` (CUDA) or since the process started (CPU)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


# ---- models and steps ------------------------------------------------------------------------------


def build_variant(name: str, args: argparse.Namespace, device: torch.device, amp: bool, compiled: bool,
                  work_dir: Path) -> Variant:
    """A SkeletonModel (same seed, so both variants share backbone and classifier weights) in a Trainer."""
    torch.manual_seed(args.seed)
    backbone = ACLNetGCN(args.layout, preset=args.preset)
    aclnet = name == "aclnet"
    aux = {
        "inter": projected_loss(backbone, InterClassAffinityLoss(args.classes, EMBEDDING_DIM, start_epoch=START_EPOCH),
                                weight=0.1, source="topology", dim=EMBEDDING_DIM),
        "intra": projected_loss(backbone, IntraClassMarginLoss(args.memory, EMBEDDING_DIM), weight=0.1,
                                source="topology", dim=EMBEDDING_DIM),
    } if aclnet else {}
    model = SkeletonModel(backbone, args.classes, aux_losses=aux)
    if compiled:
        (model if args.compile_target == "model" else model.backbone).compile()
    config = ExperimentConfig(data=DataConfig(format="synthetic"), optim=OptimConfig(batch_size=args.batch),
                              train=TrainConfig(amp=amp, device=device.type))
    # The trainer only needs the loader's length (steps per epoch for the cosine schedule).
    loader = [None] * 1000
    trainer = Trainer(config, model, loader, None, RunFolder(work_dir / name), device, DistInfo(),  # type: ignore[arg-type]
                      primary_metric="top1", class_names=[str(c) for c in range(args.classes)])
    return Variant(name, model, trainer)


def make_batches(args: argparse.Namespace, joints: int, device: torch.device) -> list[tuple[Tensor, Tensor]]:
    """Distinct random batches (N, clips=1, M, T, V, 3) and labels, already on the device."""
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch, 1, args.persons, args.frames, joints, 3)
    return [(torch.randn(shape, generator=generator).to(device),
             torch.randint(0, args.classes, (args.batch,), generator=generator).to(device))
            for _ in range(DISTINCT_BATCHES)]


@contextmanager
def no_host_sync(device: torch.device) -> Iterator[None]:
    """On CUDA, make any host synchronisation inside the block raise."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (outside the timed steps' sync check)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up(variant: Variant, batches: list[tuple[Tensor, Tensor]], args: argparse.Namespace) -> dict[str, float]:
    """Untimed steps: kernels, allocator and compilation; for ACLNet also the loss state (statistics
    in epoch START_EPOCH, then the next epoch: families rebuilt, memory filled). Returns the last losses."""
    model = variant.model
    fill = math.ceil(args.memory / args.batch) if "intra" in model.aux else 0
    total = max(args.warmup, fill + 1)
    statistics_steps = max(1, total // 3) if "inter" in model.aux else 0
    losses: dict[str, Tensor] = {}
    for step in range(total):
        model.set_epoch(START_EPOCH if step < statistics_steps else START_EPOCH + 1)
        losses = variant.trainer.train_step(*batches[step % len(batches)])
    values = {key: float(value.detach()) for key, value in losses.items()}
    check_loss_path(variant, values)
    return values


def check_loss_path(variant: Variant, losses: dict[str, float]) -> None:
    """After warm-up, ACLNet must be on the loss path the timed steps claim: families built, memory full."""
    if not all(math.isfinite(v) for v in losses.values()):
        raise RuntimeError(f"{variant.name}: non-finite losses after warm-up: {losses}")
    aux = variant.model.aux
    if "inter" not in aux or "intra" not in aux:
        return
    inter, intra = aux["inter"].loss, aux["intra"].loss
    if inter.epoch <= inter.start_epoch or not bool(inter.families.any()):
        raise RuntimeError(f"{variant.name}: the inter loss is not switched on after warm-up")
    if int(intra.filled) < intra.memory_size or losses["inter"] == 0.0:
        raise RuntimeError(f"{variant.name}: the memory is not full or the inter loss is 0 after warm-up: {losses}")


def timed_block(variant: Variant, batches: list[tuple[Tensor, Tensor]], first: int, steps: int,
                meter: PeakMemory) -> None:
    """Time `steps` training steps (each under the CUDA sync check) and record time and peak memory."""
    device = variant.trainer.device
    synchronize(device)
    in_use = meter.start()
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(first, first + steps):
        with no_host_sync(device):
            variant.trainer.train_step(*batches[step % len(batches)])
    synchronize(device)
    variant.wall.append(time.perf_counter() - wall)
    variant.cpu.append(time.process_time() - cpu)
    peak = meter.peak()
    variant.peak.append(peak)
    if in_use is not None:
        variant.step_peak.append(peak - in_use)


def measure(variants: list[Variant], batches: list[tuple[Tensor, Tensor]], args: argparse.Namespace,
            meter: PeakMemory) -> None:
    """Alternate the variants' timed blocks, swapping their order every repeat."""
    for repeat in range(args.repeats):
        for variant in variants if repeat % 2 == 0 else variants[::-1]:
            timed_block(variant, batches, repeat * args.steps, args.steps, meter)


# ---- results ---------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def base_row(args: argparse.Namespace, device: torch.device, mode: str, variant: str, joints: int,
             meter: PeakMemory) -> Row:
    """The row's description of the run, without measurements."""
    return Row(device.type, device_name(device), torch.__version__, mode, variant, args.preset or "published",
               args.batch, args.persons, args.frames, joints, args.classes, args.memory,
               torch.get_num_threads(), args.steps, args.repeats, peak_kind=meter.kind)


def measured_rows(variants: list[Variant], args: argparse.Namespace, rows: list[Row]) -> list[Row]:
    """Fill the rows with median rates, the overhead of each variant over CE, and the peak memory."""
    samples = args.batch * args.steps
    wall = {v.name: statistics.median(v.wall) for v in variants}
    cpu = {v.name: statistics.median(v.cpu) for v in variants}
    for row, variant in zip(rows, variants):
        row.samples_per_s = round(samples / wall[variant.name], 3)
        row.step_ms = round(1e3 * wall[variant.name] / args.steps, 3)
        row.overhead_pct = round(100 * (wall[variant.name] / wall["ce"] - 1), 2)
        if variant.trainer.device.type == "cpu":  # CPU time says little where the GPU does the work
            row.samples_per_cpu_s = round(samples / cpu[variant.name], 3)
            row.overhead_cpu_pct = round(100 * (cpu[variant.name] / cpu["ce"] - 1), 2)
        row.peak_mib = round(max(variant.peak) / MIB, 1)
        if variant.step_peak:
            row.step_peak_mib = round(max(variant.step_peak) / MIB, 1)
    return rows


def run_mode(mode: str, args: argparse.Namespace, device: torch.device, work_dir: Path) -> tuple[list[Row], bool]:
    """Build, warm up and measure both variants in one mode; returns the rows and whether it failed
    for a reason other than compilation (a compile failure is reported in the rows, and the run goes on)."""
    amp, compiled = MODES[mode]
    meter = PeakMemory(device)
    joints = get_layout(args.layout).num_joints
    rows = [base_row(args, device, mode, name, joints, meter) for name in VARIANTS]
    batches = make_batches(args, joints, device)
    try:
        variants = [build_variant(name, args, device, amp, compiled, work_dir) for name in VARIANTS]
        for row, variant in zip(rows, variants):
            row.parameters = sum(p.numel() for p in variant.model.parameters())
        for variant in variants:
            losses = warm_up(variant, batches, args)
            print(f"  [{mode}] {variant.name} warmed up; last losses "
                  + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()), flush=True)
    except Exception as exc:  # noqa: BLE001 - compile failures are reported, not fatal
        if not compiled:
            raise
        return failed(rows, f"compile failed: {type(exc).__name__}: {exc}"), False
    try:
        measure(variants, batches, args, meter)
    except RuntimeError as exc:  # a host synchronisation inside a step (CUDA sync check)
        return failed(rows, f"timed steps failed: {exc}"), True
    return measured_rows(variants, args, rows), False


def failed(rows: list[Row], status: str) -> list[Row]:
    """Mark the rows of a mode that could not be measured."""
    print(f"  FAILED: {status}", file=sys.stderr, flush=True)
    for row in rows:
        row.status = status.replace("\n", " ")[:500]
    return rows


def print_mode(rows: list[Row]) -> None:
    """Both rates, the overhead and peak memory of one mode."""
    ce, aclnet = rows
    if ce.status != "ok":
        print(f"{ce.mode}: {ce.status}")
        return
    line = (f"{ce.mode}: CE {ce.samples_per_s:.2f} samples/s ({ce.step_ms:.1f} ms/step), ACLNet "
            f"{aclnet.samples_per_s:.2f} samples/s ({aclnet.step_ms:.1f} ms/step); ratio CE/ACLNet "
            f"{ce.samples_per_s / aclnet.samples_per_s:.3f}, overhead {aclnet.overhead_pct:+.2f}% (target < 5%)")
    if aclnet.overhead_cpu_pct is not None:
        line += f"; by CPU time {aclnet.overhead_cpu_pct:+.2f}%"
    print(line)
    for row in rows:
        rise = f", {row.step_peak_mib:.1f} MiB above the block's start" if row.step_peak_mib is not None else ""
        print(f"  peak memory {row.variant:6s}: {row.peak_mib:.1f} MiB ({row.peak_kind}){rise}")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows already in a CSV written by this script (to append to), or none if it does not exist."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [f.name for f in fields(Row)]
        if reader.fieldnames != columns:
            raise SystemExit(f"{path}: its columns {reader.fieldnames} differ from this script's; cannot append")
        return list(reader)


def write_rows(path: Path, earlier: list[dict[str, str]], rows: list[Row]) -> None:
    """`earlier` rows and then `rows` to CSV, or `rows` to JSON, atomically."""
    records = [asdict(row) for row in rows]
    if path.suffix == ".json":
        atomic_write_bytes(path, json.dumps(records, indent=2).encode())
        return
    atomic_write_csv(path, [f.name for f in fields(Row)], [*earlier, *records])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"ACLNetGCN({args.preset or 'published'}) training step on {args.device} ({device_name(device)}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); batch {args.batch} x {args.persons} "
          f"persons x {args.frames} frames, {args.classes} classes, memory {args.memory}; median of "
          f"{args.repeats} blocks of {args.steps} step(s) per variant, interleaved", flush=True)
    earlier = read_rows(args.out) if args.append else []
    rows: list[Row] = []
    any_failed = False
    with tempfile.TemporaryDirectory() as work_dir:
        for mode in args.modes:
            mode_rows, mode_failed = run_mode(mode, args, device, Path(work_dir) / mode)
            any_failed |= mode_failed
            print_mode(mode_rows)
            rows += mode_rows
            if args.out is not None:  # after every mode, so a later crash keeps what was measured
                write_rows(args.out, earlier, rows)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if args.out is not None:
        print(f"wrote {args.out}")
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
