"""The pruning work of bench/prune_bench.c in PyTorch: VGG-16's weight tensors,
random normal, pruned to density 0.3 per layer at each granularity.
torch.nn.utils.prune where it has the granularity (l1_unstructured = fine,
ln_structured dim 0 = filter, dim 1 = channel); the same tensor code otherwise
(group L1 norms, k-th value threshold, mask). Prints granularity,seconds lines.
Usage: /usr/bin/python3 bench/torch_prune.py THREADS REPS"""
import sys, time
import torch
import torch.nn.utils.prune as prune

threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(1)
shapes = [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3), (256, 128, 3, 3),
          (256, 256, 3, 3), (256, 256, 3, 3), (512, 256, 3, 3), (512, 512, 3, 3), (512, 512, 3, 3),
          (512, 512, 3, 3), (512, 512, 3, 3), (512, 512, 3, 3), (4096, 25088, 1, 1),
          (4096, 4096, 1, 1), (1000, 4096, 1, 1)]

class Holder(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.weight = torch.nn.Parameter(w)

base = [torch.randn(s) for s in shapes]

def group_prune(w, dims, amount):
    """Keep the 30% of groups (reduced over dims) with the largest L1 norm."""
    norms = w.abs().sum(dim=dims, keepdim=True)
    k = int(round((1 - amount) * norms.numel()))
    thr = torch.kthvalue(norms.flatten(), norms.numel() - k + 1).values if k > 0 else float("inf")
    mask = (norms >= thr).expand_as(w)
    return w * mask, mask

def run(gran):
    best = 1e9
    for _ in range(reps):
        mods = [Holder(b.clone()) for b in base]
        t0 = time.perf_counter()
        for m in mods:
            w = m.weight
            if gran == "fine":
                prune.l1_unstructured(m, "weight", amount=0.7)
            elif gran == "filter":
                prune.ln_structured(m, "weight", amount=0.7, n=1, dim=0)
            elif gran == "channel":
                prune.ln_structured(m, "weight", amount=0.7, n=1, dim=1)
            elif gran == "kernel":
                group_prune(w.data, (2, 3), 0.7)
            elif gran == "vector":
                group_prune(w.data, (3,), 0.7)
        best = min(best, time.perf_counter() - t0)
    return best

for g in ["fine", "vector", "kernel", "filter", "channel"]:
    print(f"{g},{run(g):.4f}", flush=True)
