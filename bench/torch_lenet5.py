"""One epoch of Caffe LeNet-5 on MNIST with PyTorch, the same work as
`sparsegrain train --model lenet5 --epochs 1`: batch 64, SGD (momentum 0.9, weight
decay 5e-4, lr 0.01), shuffled, no augmentation. Prints the training seconds of
the epoch (data already in memory, as in sparsegrain) and the test top-1.
Usage: /usr/bin/python3 bench/torch_lenet5.py MNIST_DIR THREADS"""
import sys, time
import numpy as np
import torch
import torch.nn as nn

def idx(path):
    raw = open(path, "rb").read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

d, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(1)
xtr = idx(f"{d}/train-images-idx3-ubyte").astype(np.float32) / 255.0
ytr = idx(f"{d}/train-labels-idx1-ubyte").astype(np.int64)
xte = idx(f"{d}/t10k-images-idx3-ubyte").astype(np.float32) / 255.0
yte = idx(f"{d}/t10k-labels-idx1-ubyte").astype(np.int64)
mean, std = xtr.mean(), xtr.std()
xtr = torch.from_numpy((xtr - mean) / std).unsqueeze(1)
xte = torch.from_numpy((xte - mean) / std).unsqueeze(1)
ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
loss_fn = nn.CrossEntropyLoss()
perm = torch.randperm(len(xtr))
t0 = time.perf_counter()
net.train()
for i in range(0, len(xtr), 64):
    b = perm[i:i + 64]
    opt.zero_grad()
    loss = loss_fn(net(xtr[b]), ytr[b])
    loss.backward()
    opt.step()
secs = time.perf_counter() - t0
net.eval()
with torch.no_grad():
    top1 = (net(xte).argmax(1) == yte).float().mean().item()
print(f"{secs:.3f} {top1:.4f}")
