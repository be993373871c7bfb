"""Training epochs of sparsegrain's VGG-7 (conv-BN-ReLU x5, three max-pools, fc 256,
fc 10; convolutions without bias) on Fashion-MNIST with PyTorch: the same work as
`sparsegrain train --model vgg7 --data fashion --max-images IMAGES` (batch 64, SGD
momentum 0.9, weight decay 5e-4, constant lr 0.01, shuffled, no augmentation).
With GRAN@DENSITY, masked retraining the PyTorch way (torch.nn.utils.prune masks
on conv2-conv5 at that granularity: filter, channel, kernel, or fine for any other
granularity; PyTorch computes the dense layers whatever the mask). Prints the best
epoch seconds over ROUNDS and the worst. MODEL=resnet8 or MODEL=lenet5 (DATA_DIR then
MNIST's) trains that network instead, its conv layers after the first masked. Usage:
/usr/bin/python3 bench/torch_vgg7.py DATA_DIR THREADS IMAGES ROUNDS [GRAN@DENSITY]"""
import gzip, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.utils.prune as tprune

def idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

def find(d, stem):
    import os
    for suf in ("", ".gz"):
        if os.path.exists(f"{d}/{stem}{suf}"):
            return f"{d}/{stem}{suf}"
    raise SystemExit(f"{d}: no {stem}")

d, threads, images, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "dense"
torch.set_num_threads(threads)
torch.manual_seed(1)
xtr = idx(find(d, "train-images-idx3-ubyte")).astype(np.float32) / 255.0
ytr = idx(find(d, "train-labels-idx1-ubyte")).astype(np.int64)
xtr = torch.from_numpy((xtr - xtr.mean()) / xtr.std()).unsqueeze(1)[:images]
ytr = torch.from_numpy(ytr)[:images]

def cbr(i, o):
    return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

def net():
    return nn.Sequential(*cbr(1, 32), *cbr(32, 32), nn.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64),
                         nn.MaxPool2d(2), *cbr(64, 128), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))

class Block(nn.Module):
    def __init__(self, cin, k, stride):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(cin, k, 3, stride, 1, bias=False), nn.BatchNorm2d(k), nn.ReLU(),
                               nn.Conv2d(k, k, 3, 1, 1, bias=False), nn.BatchNorm2d(k))
        self.sc = (nn.Sequential(nn.Conv2d(cin, k, 1, stride, 0, bias=False), nn.BatchNorm2d(k))
                   if stride != 1 or cin != k else nn.Identity())

    def forward(self, x):
        return torch.relu(self.a(x) + self.sc(x))

def resnet8():
    return nn.Sequential(*cbr(1, 16), Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

def lenet5():
    # sparsegrain's LeNet-5 (Caffe's): conv 5x5 20, pool, conv 5x5 50, pool, fc 500, fc 10
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))

if os.environ.get("MODEL") == "resnet8":
    net = resnet8
elif os.environ.get("MODEL") == "lenet5":
    net = lenet5

def masked(model, gran, density):
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1:]
    for m in convs:
        k, c = m.weight.shape[:2]
        g = torch.Generator().manual_seed(3)
        if gran == "filter":
            keep = (torch.rand(k, 1, 1, 1, generator=g) < density).float().expand_as(m.weight)
        elif gran == "channel":
            keep = (torch.rand(1, c, 1, 1, generator=g) < density).float().expand_as(m.weight)
        elif gran == "kernel":
            keep = (torch.rand(k, c, 1, 1, generator=g) < density).float().expand_as(m.weight)
        else:
            keep = (torch.rand(m.weight.shape, generator=g) < density).float()
        tprune.custom_from_mask(m, "weight", keep.contiguous())
    return model

# BENCH_CPU=1: process CPU time (one thread on a shared machine), as retrain_bench
clock = time.process_time if os.environ.get("BENCH_CPU") == "1" else time.perf_counter
best, worst = 1e30, 0
for r in range(rounds):
    model = net()
    if mode != "dense":
        gran, dens = mode.split("@")
        masked(model, gran, float(dens))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    # BENCH_STEADY=1: two epochs, the second timed (as retrain_bench)
    for ep in range(2 if os.environ.get("BENCH_STEADY") == "1" else 1):
        perm = torch.randperm(len(xtr))
        t0 = clock()
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
        t = clock() - t0
    best, worst = min(best, t), max(worst, t)
print(f"{best:.3f} {worst:.3f}")
