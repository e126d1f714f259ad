"""Training-step speed of the ACLNet GCN: topology from the temporally averaged input vs per frame.

The released code applies conv1/conv2 of every graph unit to all T frames and averages afterwards;
`ACLNetGCN(topology_from_mean_input=True)` averages first (equal result, T times fewer
multiply-adds in those two convolutions). Both variants get the same weights and batches; the
script checks that their outputs and gradients agree, times forward + backward + SGD step with the
two variants interleaved, and prints samples per second and the ratio.

    python benchmarks/backbone.py                    # NTU shape: batch 4, 2 persons, 100 frames, 1 thread
    python benchmarks/backbone.py --batch 16 --threads 2 --steps 10
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import Tensor, nn

from aclnet.models import ACLNetGCN, ClassificationHead


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4, help="samples per step")
    parser.add_argument("--persons", type=int, default=2)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--preset", default=None, help="backbone preset (default: the released architecture)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


class Classifier(nn.Module):
    """Backbone plus classifier; the loss also reads the topology so conv1/conv2 get gradients."""

    def __init__(self, backbone: ACLNetGCN, num_classes: int = 60) -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = ClassificationHead(backbone.out_channels, num_classes)

    def loss(self, x: Tensor, labels: Tensor) -> Tensor:
        out = self.backbone(x)
        logits = self.cls_head(out.pooled)
        return nn.functional.cross_entropy(logits, labels) + out.topology.square().mean()


def make_pair(args: argparse.Namespace) -> tuple[Classifier, Classifier]:
    """Two models with identical weights; only the order of mean and 1x1 convolution differs.
    alpha and beta are set non-zero so the sample-dependent topology affects the outputs."""
    torch.manual_seed(args.seed)
    fast = Classifier(ACLNetGCN(preset=args.preset, topology_from_mean_input=True))
    with torch.no_grad():
        for unit in (block.gcn for block in fast.backbone.gcn):
            unit.alpha.fill_(0.3)
            unit.beta.fill_(0.2)
    slow = copy.deepcopy(fast)
    for block in slow.backbone.gcn:
        block.gcn.topology_from_mean_input = False
    return fast.to(args.device), slow.to(args.device)


def check_equal(fast: Classifier, slow: Classifier, x: Tensor, labels: Tensor) -> tuple[float, float]:
    """Relative differences between the two variants on one step without update, in float64 copies
    (in float32 the batch norms amplify rounding): of the loss, and of the gradients (largest
    difference over the largest gradient entry of the model)."""
    fast, slow, x = copy.deepcopy(fast).double(), copy.deepcopy(slow).double(), x.double()
    losses = []
    for model in (fast, slow):
        model.zero_grad()
        loss = model.loss(x, labels)
        loss.backward()
        losses.append(loss.detach())
    loss_difference = float((losses[0] - losses[1]).abs() / losses[1].abs())
    pairs = [(a.grad, b.grad) for a, b in zip(fast.parameters(), slow.parameters())]
    largest = max(float(b.abs().max()) for _, b in pairs)
    return loss_difference, max(float((a - b).abs().max()) for a, b in pairs) / largest


def conv_macs(model: Classifier, x: Tensor) -> float:
    """Multiply-adds of all convolutions in one forward pass, per sample."""
    total = []

    def hook(module: nn.Conv2d, args: tuple[Tensor, ...], out: Tensor) -> None:
        kh, kw = module.kernel_size
        total.append(out.numel() * module.in_channels // module.groups * kh * kw)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.loss(x, torch.zeros(x.shape[0], dtype=torch.long, device=x.device))
    for handle in handles:
        handle.remove()
    return sum(total) / x.shape[0]


def timed_step(model: Classifier, optimizer: torch.optim.Optimizer, x: Tensor, labels: Tensor) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process) for forward + backward + SGD step.
    CPU time is robust to other processes sharing the cores; wall-clock is what a user waits."""
    wall, cpu = time.perf_counter(), time.process_time()
    optimizer.zero_grad(set_to_none=True)
    model.loss(x, labels).backward()
    optimizer.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    fast, slow = make_pair(args)
    generator = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, args.persons, args.frames, 25, 3, generator=generator).to(args.device)
    labels = torch.randint(0, 60, (args.batch,), generator=generator).to(args.device)

    loss_difference, grad_difference = check_equal(fast, slow, x, labels)
    macs_fast, macs_slow = conv_macs(copy.deepcopy(fast), x), conv_macs(copy.deepcopy(slow), x)
    optimizers = {id(m): torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, nesterov=True) for m in (fast, slow)}
    times: dict[int, list[tuple[float, float]]] = {id(fast): [], id(slow): []}
    for step in range(args.warmup + args.steps):
        for model in (fast, slow) if step % 2 == 0 else (slow, fast):
            seconds = timed_step(model, optimizers[id(model)], x, labels)
            if step >= args.warmup:
                times[id(model)].append(seconds)

    def rates(model: Classifier) -> tuple[float, float]:
        """Samples per second from the median wall-clock and the median CPU time."""
        return tuple(args.batch / statistics.median(t[i] for t in times[id(model)]) for i in (0, 1))

    (wall_fast, cpu_fast), (wall_slow, cpu_slow) = rates(fast), rates(slow)
    print(f"ACLNetGCN({args.preset or 'released'}) training step, batch {args.batch} x {args.persons} persons x "
          f"{args.frames} frames x 25 joints, {args.threads} thread(s), {args.device}, median of {args.steps} steps")
    print(f"  relative difference of the two variants: loss {loss_difference:.1e}, gradients {grad_difference:.1e}")
    print(f"  convolution multiply-adds per sample: {macs_slow / 1e9:.2f} G per frame, {macs_fast / 1e9:.2f} G "
          f"averaged first (the speed-up if convolutions took all the time: {macs_slow / macs_fast:.2f}x)")
    print("                                        samples/s (wall)  samples/s (CPU time)")
    print(f"  topology per frame (released order): {wall_slow:12.2f} {cpu_slow:18.2f}")
    print(f"  topology from averaged input:        {wall_fast:12.2f} {cpu_fast:18.2f}")
    print(f"  speed-up:                            {wall_fast / wall_slow:11.2f}x {cpu_fast / cpu_slow:17.2f}x")


if __name__ == "__main__":
    main()
