#!/usr/bin/python3
"""Makes the PyTorch test models of tests/cli/onnx.sh (run at test time; nothing here
is committed as a binary). For each net: NAME.onnx (torch.onnx.export, opset 13, a
symbolic batch), NAME.x.npy (a random input) and NAME.y.npy (PyTorch's output).

usage: make_torch_models.py OUTDIR
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(2)


def randomize_bn(m):
    # eval-mode BN with non-trivial statistics, so a wrong momentum/eps/order shows
    for b in m.modules():
        if isinstance(b, (nn.BatchNorm2d, nn.BatchNorm1d)):
            b.running_mean.uniform_(-0.5, 0.5)
            b.running_var.uniform_(0.5, 2.0)
            b.weight.data.uniform_(0.5, 1.5)
            b.bias.data.uniform_(-0.5, 0.5)


class ConvBnPool(nn.Module):
    """conv + BN + ReLU, maxpool, avgpool with padding, flatten + linear"""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = F.max_pool2d(x, 2)
        x = F.relu(self.b2(self.c2(x)))
        x = F.avg_pool2d(x, 3, stride=1, padding=1)
        return self.fc(torch.flatten(x, 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.sc = None
        if stride != 1 or cin != cout:
            self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (self.sc(x) if self.sc is not None else x))


class ResNet(nn.Module):
    """residual adds, a projection shortcut, global average pool, linear"""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.l1 = Block(16, 16, 1)
        self.l2 = Block(16, 32, 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.l2(self.l1(self.stem(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Inception(nn.Module):
    """channel concat, grouped and dilated convs, ceil-mode pooling, dropout, softmax"""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(3, 8, 3, padding=2, dilation=2)
        self.g = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(16 * 5 * 5, 7)

    def forward(self, x):
        x = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1)
        x = F.max_pool2d(F.relu(self.g(x)), 3, stride=2, ceil_mode=True)
        x = self.drop(torch.flatten(x, 1))
        return F.softmax(self.fc(x), dim=1)


class Mlp(nn.Module):
    """a flat input: linear + BN1d + ReLU"""

    def __init__(self):
        super().__init__()
        self.f1 = nn.Linear(20, 32)
        self.bn = nn.BatchNorm1d(32)
        self.f2 = nn.Linear(32, 5)

    def forward(self, x):
        return self.f2(F.relu(self.bn(self.f1(x))))


NETS = {
    "convbnpool": (ConvBnPool, (4, 3, 16, 16)),
    "resnet": (ResNet, (4, 3, 16, 16)),
    "inception": (Inception, (3, 3, 11, 11)),
    "mlp": (Mlp, (6, 20)),
}


def main(out):
    for name, (cls, shape) in NETS.items():
        m = cls()
        randomize_bn(m)
        m.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = m(x)
        # keep BN as its own node (no folding), as a model fresh from training has it
        torch.onnx.export(m, x, f"{out}/{name}.onnx", input_names=["input"], output_names=["out"],
                          dynamic_axes={"input": {0: "N"}, "out": {0: "N"}}, opset_version=13,
                          do_constant_folding=False, training=torch.onnx.TrainingMode.EVAL)
        np.save(f"{out}/{name}.x.npy", x.numpy().astype(np.float32))
        np.save(f"{out}/{name}.y.npy", y.numpy().astype(np.float32))
        print(name)


if __name__ == "__main__":
    main(sys.argv[1])
