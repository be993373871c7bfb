"""Trains two small MNIST models in PyTorch, one on ToTensor's pixels in [0, 1] and one on
Normalize((0.1307,), (0.3081,)) of them, exports both to ONNX and writes what PyTorch
measures on the 10,000 test images (float32, as torchvision computes the inputs) to
OUT/ref.json. Used by tests/cli/input_norm.sh. Usage: torch_mnist_norm.py MNIST_DIR OUT"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    raw = open(path, "rb").read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def inputs(u8, norm):
    # torchvision: ToTensor = to float32, divided by 255; Normalize = sub_(mean).div_(std)
    # with mean and std as float32 tensors
    x = torch.from_numpy(u8.copy()).unsqueeze(1).to(torch.float32).div(255)
    if norm:
        x = x.sub(torch.tensor([0.1307]).view(1, 1, 1, 1)).div(torch.tensor([0.3081]).view(1, 1, 1, 1))
    return x


def main():
    src, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    torch.set_num_threads(1)  # several threads on a busy machine: far slower
    xtr, ytr = idx(f"{src}/train-images-idx3-ubyte"), idx(f"{src}/train-labels-idx1-ubyte")
    xte, yte = idx(f"{src}/t10k-images-idx3-ubyte"), idx(f"{src}/t10k-labels-idx1-ubyte")
    ytr_t, yte_t = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    nets = {
        # the example: one Linear(784, 10) on pixels in [0, 1]
        "plain": (False, nn.Sequential(nn.Flatten(), nn.Linear(784, 10))),
        # a tiny conv net on normalised pixels
        "normalized": (True, nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2),
                                           nn.Flatten(), nn.Linear(4 * 12 * 12, 10))),
    }
    ref = {}
    for name, (norm, net) in nets.items():
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        g = torch.Generator().manual_seed(1)
        for step in range(300):
            b = torch.randint(0, len(xtr), (64,), generator=g).numpy()
            loss = F.cross_entropy(net(inputs(xtr[b], norm)), ytr_t[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            z = net(inputs(xte, norm))
            ref[name] = {
                "correct": int((z.argmax(1) == yte_t).sum()),
                "loss": float(F.cross_entropy(z, yte_t)),
                # what the other preprocessing would give (the wrong option)
                "loss_other": float(F.cross_entropy(net(inputs(xte, not norm)), yte_t)),
            }
        torch.onnx.export(net, torch.zeros(1, 1, 28, 28), f"{out}/{name}.onnx", opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    json.dump(ref, open(f"{out}/ref.json", "w"))
    print(json.dumps(ref))


main()
