"""Where PyTorch's training step goes, per operator (torch.autograd.profiler, self
CPU time), for the same models and batch as bench/train_profile.c: LeNet-5
(Caffe 20-50-500-10), VGG-7 or ResNet-8 (bench/torch_vgg7.py's definitions), SGD
momentum 0.9 and weight decay 5e-4, on consecutive batches of Fashion-MNIST (a
fixed random batch is not a fair input: PyTorch's steps on it run 3-4x slower than
on real images). Prints the step time (wall, and process CPU time), then the
operators by self CPU time per step. MODEL resnet8-convs: each of ResNet-8's
convolution shapes alone, forward and backward (input and weight gradients), the
fastest of 15 in process CPU time, as train_profile's c_fwd and c_wgrad + c_dgrad.
Usage: /usr/bin/python3 bench/torch_profile.py MODEL THREADS [STEPS [BATCH [DATA_DIR]]]"""
import gzip, sys, time
import numpy as np
import torch
import torch.nn as nn

model, threads = sys.argv[1], int(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 20
bs = int(sys.argv[4]) if len(sys.argv) > 4 else 64
torch.set_num_threads(threads)
torch.manual_seed(1)

def cbr(i, o):
    return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

class Block(nn.Module):
    def __init__(self, cin, k, stride):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(cin, k, 3, stride, 1, bias=False), nn.BatchNorm2d(k), nn.ReLU(),
                               nn.Conv2d(k, k, 3, 1, 1, bias=False), nn.BatchNorm2d(k))
        self.sc = (nn.Sequential(nn.Conv2d(cin, k, 1, stride, 0, bias=False), nn.BatchNorm2d(k))
                   if stride != 1 or cin != k else nn.Identity())

    def forward(self, x):
        return torch.relu(self.a(x) + self.sc(x))

if model == "resnet8-convs":
    for name, c, k, h, ks, st in [("conv1", 1, 16, 28, 3, 1), ("block1_conv", 16, 16, 28, 3, 1),
                                  ("block2_conv1", 16, 32, 28, 3, 2), ("block2_conv2", 32, 32, 14, 3, 1),
                                  ("block2_proj", 16, 32, 28, 1, 2), ("block3_conv1", 32, 64, 14, 3, 2),
                                  ("block3_conv2", 64, 64, 7, 3, 1), ("block3_proj", 32, 64, 14, 1, 2)]:
        conv = nn.Conv2d(c, k, ks, st, ks // 2, bias=False)
        xin = torch.randn(bs, c, h, h, requires_grad=True)
        g = torch.randn_like(conv(xin))
        bf = bb = 1e9
        for _ in range(15):
            t0 = time.process_time()
            out = conv(xin)
            t1 = time.process_time()
            out.backward(g)
            t2 = time.process_time()
            bf, bb = min(bf, t1 - t0), min(bb, t2 - t1)
        print(f"{name:<14} fwd {1e3 * bf:6.2f} ms  bwd {1e3 * bb:6.2f} ms")
    sys.exit(0)
elif model == "resnet8":
    net = nn.Sequential(*cbr(1, 16), Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
elif model == "vgg7":
    net = nn.Sequential(*cbr(1, 32), *cbr(32, 32), nn.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64),
                        nn.MaxPool2d(2), *cbr(64, 128), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))
elif model == "lenet5":
    net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
else:
    raise SystemExit(f"unknown model {model} (lenet5, vgg7, resnet8)")
d = sys.argv[5] if len(sys.argv) > 5 else "/usr/share/datasets/fashion-mnist"

def idx(stem):
    for suf in ("", ".gz"):
        try:
            raw = open(f"{d}/{stem}{suf}", "rb").read()
        except FileNotFoundError:
            continue
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        nd = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
    raise SystemExit(f"{d}: no {stem}")

xall = idx("train-images-idx3-ubyte").astype(np.float32) / 255.0
xall = torch.from_numpy((xall - xall.mean()) / xall.std()).unsqueeze(1)
yall = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
nb = len(xall) // bs
it = 0
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
loss_fn = nn.CrossEntropyLoss()
net.train()

def step():
    global it
    b = it % nb
    it += 1
    x, y = xall[b * bs:(b + 1) * bs], yall[b * bs:(b + 1) * bs]
    opt.zero_grad()
    loss_fn(net(x), y).backward()
    opt.step()

for _ in range(5):
    step()
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(steps):
    step()
t1, c1 = time.perf_counter(), time.process_time()
print(f"{model} batch {bs}, {threads} threads: {1e3 * (t1 - t0) / steps:.2f} ms wall, "
      f"{1e3 * (c1 - c0) / steps:.2f} ms CPU per step")
with torch.autograd.profiler.profile() as prof:
    for _ in range(steps):
        step()
rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
print(f"{'op':<48} {'self_ms/step':>12} {'calls/step':>10}")
for e in rows[:25]:
    print(f"{e.key[:48]:<48} {e.self_cpu_time_total / 1e3 / steps:12.3f} {e.count / steps:10.1f}")
