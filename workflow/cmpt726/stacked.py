"""Several seeds of one variant trained as one stacked model in one process (torch.func), for CUDA.

On a GPU a batch-32 step of this small network is bound by the host's kernel launches, not by the card, so K
members a launch do K times the work for about the time of one. Each member keeps its own shuffle and augmentation
streams, BatchNorm statistics, learning rate and weight decay; nothing mixes them but the sum of their losses,
whose gradient is each member's own. A member whose loss turns non-finite is set aside and named; the others train
on. Dropout draws each member's masks from one shared stream, so with dropout a member is not its lone run.
"""

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from .loop import batch_bounds, diverged_message, progress_line
from .runtime import EVAL_BATCH


class StackedSGD:
    """torch.optim.SGD's update (momentum, Nesterov, L2 weight decay) over stacked parameters, with a learning rate
    and weight decay per member (tensors of K values)."""

    def __init__(self, params: dict, momentum: float, nesterov: bool, weight_decay: torch.Tensor):
        self.params, self.momentum, self.nesterov = params, momentum, nesterov
        self.weight_decay = weight_decay
        # Zeros, not absent: 0 · momentum + d is exactly torch's first-step clone(d), and a captured graph needs
        # every buffer to exist before it runs.
        self.buffers = {name: torch.zeros_like(p) for name, p in params.items()} if momentum else {}

    @torch.no_grad()
    def step(self, grads, lr: torch.Tensor) -> None:
        for (name, p), g in zip(self.params.items(), grads):
            per_member = (-1,) + (1,) * (p.dim() - 1)
            d = g + self.weight_decay.view(per_member) * p
            if self.momentum:
                buf = self.buffers[name].mul_(self.momentum).add_(d)
                d = d + self.momentum * buf if self.nesterov else buf
            p.sub_(lr.view(per_member) * d)


class GlobalMean(torch.nn.Module):
    """AdaptiveAvgPool2d((1, 1)) as a mean, which vmap batches in one kernel instead of one per member."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


class Stack:
    """K copies of one architecture as stacked tensors; `nets` are the members' modules (same train/eval modes)."""

    def __init__(self, nets: list, momentum: float, nesterov: bool, weight_decay: list[float], bf16: bool = False):
        self.nets, self.bf16 = nets, bf16
        self.device = next(nets[0].parameters()).device
        trained = {name for name, p in nets[0].named_parameters() if p.requires_grad}
        params, self.buffers = stack_module_state(nets)
        self.params = {name: p.detach().requires_grad_(True) for name, p in params.items() if name in trained}
        self.frozen = {name: p.detach() for name, p in params.items() if name not in trained}
        self.base = copy.deepcopy(nets[0]).to("meta")  # the architecture; the weights come from the stack
        for module in list(self.base.modules()):  # vmap has no batching rule for adaptive pooling's restride
            for child_name, child in module.named_children():
                if isinstance(child, torch.nn.AdaptiveAvgPool2d) and child.output_size in (1, (1, 1)):
                    setattr(module, child_name, GlobalMean())
        wd = torch.tensor(weight_decay, dtype=torch.float32, device=self.device)
        self.optimizer = StackedSGD(self.params, momentum, nesterov, wd)
        self.graph = None

    def __len__(self) -> int:
        return len(self.nets)

    def _modes_from(self, net) -> None:
        for mine, theirs in zip(self.base.modules(), net.modules()):
            mine.training = theirs.training

    def forward(self, xs: torch.Tensor, shared_input: bool = False) -> torch.Tensor:
        """Logits (K, B, 10) of inputs (K, B, …), or of one batch (B, …) for every member when `shared_input`."""

        def one(params, buffers, x):
            return functional_call(self.base, (params, buffers), (x,))

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = vmap(one, in_dims=(0, 0, None if shared_input else 0), randomness="different")(
                {**self.params, **self.frozen}, self.buffers, xs)
        return out.float()

    def step(self, xs: torch.Tensor, ys: torch.Tensor, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step of every member: (loss, correct), K values each, left on the device."""
        logits = self.forward(xs)
        losses = F.cross_entropy(logits.transpose(1, 2), ys, reduction="none").mean(1)
        grads = torch.autograd.grad(losses.sum(), list(self.params.values()))
        self.optimizer.step(grads, lr)
        return losses.detach(), (logits.argmax(2) == ys).sum(1)

    def captured_step(self, xs, ys, lr):
        """`step` replayed from a CUDA graph (one launch a step); captured at the first full batch it sees."""
        if self.graph is None:
            self._capture(xs, ys, lr)
        self.static[0].copy_(xs)
        self.static[1].copy_(ys)
        self.static[2].copy_(lr)
        self.graph.replay()
        return self.static_out

    def _capture(self, xs, ys, lr) -> None:
        # Warm-up steps must run before a capture; they change the weights, so every state is put back after.
        state = [t.detach().clone() for t in self._state()]
        self.static = (xs.clone(), ys.clone(), lr.clone())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.step(*self.static)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = self.step(*self.static)
        with torch.no_grad():
            for live, saved in zip(self._state(), state):
                live.copy_(saved)

    def _state(self) -> list[torch.Tensor]:
        return list(self.params.values()) + list(self.buffers.values()) + list(self.optimizer.buffers.values())

    @torch.inference_mode()
    def evaluate(self, batches, labels) -> tuple[list[float], list[float]]:
        """Each member's mean cross-entropy and accuracy (%) on the same held-out inputs, in eval mode."""
        for net in self.nets:
            net.eval()
        self._modes_from(self.nets[0])
        logits = torch.cat([self.forward(batches[i:i + EVAL_BATCH], shared_input=True)
                            for i in range(0, len(batches), EVAL_BATCH)], dim=1)
        target = labels.expand(len(self), -1)
        loss = F.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)
        acc = (logits.argmax(2) == target).float().mean(1)
        return loss.tolist(), [100.0 * a for a in acc.tolist()]  # as loop.evaluate rounds it

    def member_state(self, k: int) -> dict:
        """Member k's state_dict (copies), keyed as its own module's."""
        merged = {**self.params, **self.frozen, **self.buffers}
        return {name: merged[name][k].detach().clone() for name in self.nets[k].state_dict()}

    def unstack(self) -> None:
        """Each member's module gets its trained weights and statistics back."""
        for k, net in enumerate(self.nets):
            net.load_state_dict(self.member_state(k))


def fit_stacked(runs: list, held_out, lr_ats: list, capture: bool = False, name: str = "training",
                describe: str = "") -> tuple[list[list[dict]], list[int | None], dict[int, str]]:
    """Train `runs` (finetune.Run, one per seed, alike but in lr and weight decay) together: each member's epoch
    rows, the epoch whose weights it ends with (keep: best), and {member: why} for those that diverged (their
    weights are junk). `lr_ats[k]` is member k's schedule (step → lr), None for its constant lr."""
    settings = runs[0].settings
    stack = Stack([run.net for run in runs], settings["momentum"], settings["nesterov"],
                  [run.settings["weight_decay"] for run in runs], settings["bf16"])
    k_all, device = len(runs), stack.device
    n = len(runs[0].train[1])
    bounds = batch_bounds(n, settings["batch_size"])
    keep_best = settings["keep"] == "best" and held_out is not None
    histories, seconds = [[] for _ in runs], []
    best = [{"epoch": None, "acc": None, "state": None} for _ in runs]
    diverged: dict[int, str] = {}
    step_index = 0
    for epoch in range(settings["epochs"]):
        tic = time.perf_counter()
        for run in runs:
            run.set_train_mode()
        stack._modes_from(runs[0].net)
        orders = [torch.randperm(n, generator=run.shuffle).to(device) for run in runs]
        loss_sum = torch.zeros(k_all, device=device)
        correct = torch.zeros(k_all, device=device, dtype=torch.long)
        # Every member's rate at every step of the epoch, sent to the device once, not once a step.
        lrs = [[run.settings["lr"] if lr_at is None else lr_at(step) for run, lr_at in zip(runs, lr_ats)]
               for step in range(step_index, step_index + len(bounds))]
        lr_table = torch.tensor(lrs, device=device)
        step_index += len(bounds)
        for i, (start, stop) in enumerate(bounds):
            xs = torch.stack([run.train[0][order[start:stop]] for run, order in zip(runs, orders)])
            ys = torch.stack([run.train[1][order[start:stop]] for run, order in zip(runs, orders)])
            full = stop - start == settings["batch_size"]
            loss, hits = (stack.captured_step if capture and full else stack.step)(xs, ys, lr_table[i])
            loss_sum += loss * (stop - start)
            correct += hits
        train_loss, train_acc = (loss_sum / n).tolist(), (100.0 * correct / n).tolist()
        val_loss, val_acc = stack.evaluate(*held_out) if held_out is not None else ([None] * k_all, [None] * k_all)
        seconds.append(time.perf_counter() - tic)
        for k, run in enumerate(runs):
            row = {"epoch": epoch + 1, "train_loss": train_loss[k], "train_acc": train_acc[k],
                   "val_loss": val_loss[k], "val_acc": val_acc[k], "seconds": seconds[-1] / k_all}
            if lr_ats[k] is not None:
                row["lr"] = lrs[0][k]
            histories[k].append(row)
            if k in diverged:
                continue
            bad = next(((which, value) for which, value in (("training", train_loss[k]), ("val", val_loss[k]))
                        if value is not None and not math.isfinite(value)), None)
            if bad:  # set aside: its weights are junk, the others' are its own
                diverged[k] = diverged_message(name, ", ".join(filter(None, [describe, f"seed {run.seed}"])), *bad,
                                               epoch + 1, lrs[-1][k])
                continue
            if keep_best and (best[k]["acc"] is None or val_acc[k] > best[k]["acc"]):  # ties: the earlier
                best[k] = {"epoch": epoch + 1, "acc": val_acc[k], "state": stack.member_state(k)}
            print(progress_line(f"{name} seed {run.seed}", row, settings["epochs"], seconds), flush=True)
    stack.unstack()
    kept = []
    for k, run in enumerate(runs):
        if keep_best and best[k]["state"] is not None:
            run.net.load_state_dict(best[k]["state"])
        kept.append(best[k]["epoch"] if keep_best else settings["epochs"])
    return histories, kept, diverged
