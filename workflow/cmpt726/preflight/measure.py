"""Seconds a training step takes here (torch), for the pre-flight's estimate: `python -m cmpt726.preflight.measure`
reads {"device", "items": [{kind, batch, bf16, channels_last, threads, head}]} on stdin and prints
{"seconds": [per item], "startup", "device"}. Random weights and inputs: a step costs the same.
"""

import time

TIC = time.perf_counter()

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from .. import evaluation, finetune, models, snakemake_job  # noqa: E402, F401 (what every heavy job imports)
from ..device import name as device_name  # noqa: E402

STARTUP = time.perf_counter() - TIC  # what every job pays before its first step: importing torch and the package
LINEAR = {"hidden": [], "batchnorm": False, "dropout": 0.0}
BUDGET = 0.4   # seconds of timed steps per item
SLOW = 0.5     # a warm-up step longer than this: one timed step


def _step(item: dict, device: torch.device):
    """A function running one step of `item`'s kind on random inputs."""
    head = item.get("head") or LINEAR
    batch = item["batch"]
    memory = torch.channels_last if item["channels_last"] else torch.contiguous_format
    labels = torch.randint(0, models.NUM_CLASSES, (batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(item["bf16"]))
    if item["kind"] == "head":
        net = models.build_head(**head).to(device).train()
        x = torch.randn(batch, models.FEATURES, device=device)
        params = list(net.parameters())
    else:
        model = models.build_finetune_net(None, head, 0).to(device, memory_format=memory)
        x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=memory)
        net = model
        if item["kind"] == "forward":
            model.eval()

            def forward():
                with torch.inference_mode(), autocast:
                    model(x)
            return forward
        train = "all" if item["kind"] == "full" else "head"
        params = models.trainable_parameters(model, train)
        models.set_train_mode(model, train)
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def step():
        with autocast:
            logits = net(x)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def seconds(item: dict, device: torch.device) -> float:
    """The median seconds of one step of `item` (after a warm-up step)."""
    torch.set_num_threads(max(1, int(item["threads"])))
    step = _step(item, device)

    def once() -> float:
        tic = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - tic

    times = [once()]  # the warm-up: allocations, kernel choice
    if times[0] > SLOW:
        return once()
    times, spent = [], 0.0
    while spent < BUDGET and len(times) < 50:
        times.append(once())
        spent += times[-1]
    return statistics.median(times)


def main() -> None:
    request = json.load(sys.stdin)
    device = torch.device(request["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch sees no CUDA device")
    torch.manual_seed(0)
    out = {"seconds": [seconds(item, device) for item in request["items"]], "startup": STARTUP,
           "device": device_name(device)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
