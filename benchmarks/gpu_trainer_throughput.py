"""GPU throughput of nntransfer's trainer against a hand-written loop: ResNet-50 fine-tuning with AMP.

Both train torchvision's ResNet-50 with a new 10-class head (SGD with
momentum, every layer trained) on the same batches of ``--image-size``
images held in pinned host memory, with the same GPU options:

  a) a hand-written loop: autocast (``--amp``; fp16 with a GradScaler),
     channels_last model and inputs, cudnn.benchmark, non-blocking copies,
     loss and accuracy summed on the GPU and read once per epoch;
  b) ``Loop`` with ``amp=--amp``, the ``performance`` module (channels_last,
     cudnn_benchmark) and ``nan_policy="off"`` (the hand loop does not look
     at each loss either);
  c) the same with the default ``nan_policy="raise"``, which reads every
     batch's loss (a device sync per batch).

The weights start from torchvision's random initialisation (throughput does
not depend on their values).  Images per second over ``--epochs`` epochs,
after one warm-up run of each (cuDNN's autotuning, the allocator); the
variants run interleaved, ``--reps`` times.  Prints a markdown table with
the ratios of the medians to the hand loop (target for b: at least 0.97).
Without a CUDA device it says so and exits with code 0.

Usage: python benchmarks/gpu_trainer_throughput.py [--reps 5] [--epochs 3] [--images 2048]
           [--batch-size 128] [--image-size 224] [--amp fp16|bf16]
"""

import argparse
import logging
import statistics
import sys
import time

import torch
import torchvision

from nntransfer.trainer.loop import Loop

CLASSES = 10


def make_batches(args, device):
    generator = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, args.images, args.batch_size):
        n = min(args.batch_size, args.images - start)
        inputs = torch.randn(n, 3, args.image_size, args.image_size, generator=generator)
        targets = torch.randint(0, CLASSES, (n,), generator=generator)
        if device.type == "cuda":
            inputs, targets = inputs.pin_memory(), targets.pin_memory()
        batches.append((inputs, targets))
    return batches


def make_model():
    torch.manual_seed(0)
    return torchvision.models.resnet50(num_classes=CLASSES)


def hand_loop(batches, args, device):
    dtype = torch.float16 if args.amp == "fp16" else torch.bfloat16
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    model = make_model().to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    history = []
    try:
        for _ in range(args.epochs):
            loss_sum, correct, count = 0.0, 0, 0
            for inputs, targets in batches:
                inputs = inputs.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                targets = targets.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=dtype):
                    outputs = model(inputs)
                    loss = loss_fn(outputs, targets)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                loss_sum = loss_sum + loss.detach() * len(targets)
                correct = correct + (outputs.argmax(1) == targets).sum()
                count += len(targets)
            history.append(((loss_sum / count).item(), (correct / count).item()))
    finally:
        torch.backends.cudnn.benchmark = saved
    return history


def trainer(batches, args, device, nan_policy):
    modules = {"performance": {"channels_last": True, "cudnn_benchmark": True}}
    Loop(make_model(), {"train": batches}, epochs=args.epochs, optimizer="sgd", lr=0.01,
         optimizer_options={"momentum": 0.9}, device=device, amp=args.amp, nan_policy=nan_policy,
         modules=modules).fit()


def timed(run, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--amp", choices=["fp16", "bf16"], default="fp16")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu with --amp bf16 to try the script")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("This benchmark needs a CUDA GPU and this machine has none (torch.cuda.is_available() is False); "
              "nothing was measured. Run it on a GPU node.")
        return 0
    logging.getLogger("nntransfer").setLevel(logging.WARNING)
    batches = make_batches(args, device)
    variants = {
        "a) hand-written loop": lambda: hand_loop(batches, args, device),
        "b) Loop, nan_policy='off'": lambda: trainer(batches, args, device, "off"),
        "c) Loop, nan_policy='raise' (default)": lambda: trainer(batches, args, device, "raise"),
    }
    for run in variants.values():  # warm-up
        timed(run, device)
    seconds = {name: [] for name in variants}
    for _ in range(args.reps):
        for name, run in variants.items():
            seconds[name].append(timed(run, device))

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{where}, torch {torch.__version__}: ResNet-50 fine-tuning, {args.images} images "
          f"{args.image_size}x{args.image_size}, batch {args.batch_size}, amp {args.amp}, channels_last, "
          f"cudnn.benchmark, {args.epochs} epochs, {args.reps} interleaved repetitions\n")
    print("| variant | median images/s | min | max | vs hand-written loop |")
    print("| --- | ---: | ---: | ---: | ---: |")
    images = args.images * args.epochs
    base = images / statistics.median(seconds["a) hand-written loop"])
    for name, values in seconds.items():
        rates = [images / value for value in values]
        median = statistics.median(rates)
        print(f"| {name} | {median:.0f} | {min(rates):.0f} | {max(rates):.0f} | {median / base:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
