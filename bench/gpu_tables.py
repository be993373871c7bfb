#!/usr/bin/env python3
"""The tables of docs/gpu.md from bench-gpu's CSV (bench/results/gpu.csv).

    python3 bench/gpu_tables.py bench/results/gpu.csv

Per GPU, network and layer kind (conv, fc): for each granularity and format, the speed-up
over dense of the whole stack (the sum over every layer, repeated shapes included, of the
dense time measured in the same run on the same GPU, divided by the sum of the format's
times) at each density; '- (k/N)' where only k of the N layers ran and matched dense.
'beats dense' lists the densities of the grid where the stack is faster than dense.
"""
import csv, sys
from collections import defaultdict

def table(sel, dens):
    layers = list(dict.fromkeys(r["layer"] for r in sel))
    dense = [r for r in sel if r["granularity"] == "dense"]
    dtot = sum(float(r["ms"]) for r in dense)
    peak = float(sel[0]["peak_tflops"])
    flops = sum(2 * float(r["m"]) * float(r["k"]) * float(r["n"]) for r in dense)
    out = [f"dense {dtot:.3f} ms ({flops / dtot / 1e9:.0f} TFLOP/s, {flops / dtot / 1e9 / peak:.0%} of the "
           f"{peak:.0f} TFLOP/s cuBLAS peak measured in the run)", ""]
    out.append("| granularity | format (library) | " + " | ".join(f"{d:g}" for d in dens) + " | beats dense at |")
    out.append("|---|---|" + "---|" * (len(dens) + 1))
    groups, libs = defaultdict(dict), defaultdict(set)
    for r in sel:
        if r["granularity"] == "dense":
            continue
        g = (r["granularity"], r["format"])
        groups[g].setdefault(float(r["target_density"]), []).append(r)
        if r["ok"] == "1":
            libs[g].add(r["library"].split(" ")[0])
    for g, byd in groups.items():
        cells, sp = [], {}
        for d in dens:
            rs = byd.get(d, [])
            if not rs:
                cells.append("")
                continue
            ok = [r for r in rs if r["ok"] == "1"]
            if len(ok) == len(layers):
                s = sum(float(r["dense_ms"]) for r in ok) / sum(float(r["ms"]) for r in ok)
                sp[d] = s
                cells.append(f"{s:.2f}x")
            else:
                cells.append(f"- ({len(ok)}/{len(layers)})")
        wins = [d for d in dens if d in sp and sp[d] >= 1]
        cross = ", ".join(f"{d:g}" for d in wins) if wins else ("never" if sp else "-")
        out.append(f"| {g[0]} | {g[1]} ({', '.join(sorted(libs[g])) or '-'}) | " + " | ".join(cells) + f" | {cross} |")
    return len(layers), out

def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    dens = sorted({float(r["target_density"]) for r in rows if r["granularity"] != "dense"}, reverse=True)
    for gpu in dict.fromkeys(r["gpu"] for r in rows):
        for net in dict.fromkeys(r["net"] for r in rows):
            sub = [r for r in rows if r["gpu"] == gpu and r["net"] == net]
            for kind in ("conv", "fc"):
                sel = [r for r in sub if r["layer"].startswith("fc") == (kind == "fc")]
                if not sel:
                    continue
                n, lines = table(sel, dens)
                print(f"**{gpu}, {net} {kind}** ({n} layers, {sel[0]['dtype']}, batch {sel[0]['batch']}, "
                      f"commit {sel[0]['tag']}): " + lines[0])
                print("\n".join(lines[1:]))
                print()

main()
