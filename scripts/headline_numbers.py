#!/usr/bin/env python3
"""The numbers behind docs/results.md's findings, from one finished study's CSVs.

    python3 scripts/headline_numbers.py STUDY_DIR

STUDY_DIR holds what `sparsegrain study` wrote (no_loss.csv, curves.csv, storage.csv,
scnn.csv). Prints, for the three findings of Mao et al.:
  1. the no-loss table (mean, 95% CI, range over seeds, paired verdict against fine) and
     the mean test top-1 curve of every granularity at each grid point (with the seeds
     that reached it) next to the dense reference retrained for the same epochs;
  2. storage at each seed's no-loss density (smallest format of the pruned layers with
     8-bit codebook values), the per-seed ratio to fine, and the index share of every
     format at matched accuracy;
  3. SCNN memory references and energy, fine over each granularity, per dataflow, at
     matched density and at matched accuracy (mean and range over seeds).
Nothing here decides anything: it reads the study's own tables."""
import csv
import os
import statistics
import sys
from collections import defaultdict

GRANS = ["fine", "vector", "kernel", "filter"]


def rows(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        sys.exit(f"headline_numbers.py: {p}: missing (is the study finished?)")
    with open(p) as f:
        return list(csv.DictReader(f))


def rng(v):
    return f"{min(v):.3g}-{max(v):.3g}" if v else "-"


def finding1(d):
    print("1. no-loss density (validation walk against the dense reference)")
    for r in rows(d, "no_loss.csv"):
        verdict = r["verdict"] if r["granularity"] != "fine" else "-"
        diff = (f"{float(r['diff_mean']):+.3f} ± {float(r['diff_ci95']):.3f}"
                if r["granularity"] != "fine" else "")
        print(f"  {r['granularity']:<8} {float(r['no_loss_density']):.3f} ± {float(r['ci95']):.3f}"
              f"  range {float(r['min']):.3g}-{float(r['max']):.3g}  mean curve {r['mean_curve']}"
              f"  vs fine {verdict} {diff}  test {100 * float(r['top1_at_no_loss']):.2f}%"
              f"  {r['note']}")
    cur = rows(d, "curves.csv")
    ref = {r["target"]: r for r in cur if r["granularity"] == "dense" and not r["control"]}
    print("  mean test top-1 by grid point (seeds reaching it), dense reference first:")
    targets = [r["target"] for r in cur if r["granularity"] == "dense" and not r["control"]]
    for t in targets:
        line = f"    {t:>6}: dense {100 * float(ref[t]['top1_mean']):.2f}% ({ref[t]['seeds']})"
        for g in GRANS:
            m = [r for r in cur if r["granularity"] == g and not r["control"] and r["target"] == t]
            if m:
                line += f"  {g} {100 * float(m[0]['top1_mean']):.2f}% ({m[0]['seeds']})"
        print(line)


def finding2(d):
    print("2. storage at each seed's no-loss density (pruned layers, 8-bit codebook values)")
    st = [r for r in rows(d, "storage.csv") if r["value_coding"] == "codebook8"]
    best = {}  # (gran, seed) -> smallest row
    for r in st:
        k = (r["granularity"], r["seed"])
        if k not in best or int(r["bytes"]) < int(best[k]["bytes"]):
            best[k] = r
    seeds = sorted({s for (_, s) in best}, key=int)
    for g in GRANS + ["filter (thinned)"]:
        b = [int(best[(g, s)]["bytes"]) for s in seeds if (g, s) in best]
        if not b:
            continue
        ratio = [int(best[("fine", s)]["bytes"]) / int(best[(g, s)]["bytes"])
                 for s in seeds if (g, s) in best and ("fine", s) in best]
        fmts = sorted({best[(g, s)]["format"] for s in seeds if (g, s) in best})
        model = [float(best[(g, s)]["model_ratio"]) for s in seeds if (g, s) in best]
        print(f"  {g:<16} mean {statistics.mean(b) / 1024:.1f} KiB ({'/'.join(fmts)})"
              f"  fine/{g} per seed {', '.join(f'{x:.2f}' for x in ratio)}"
              f"  whole model {rng(model)}x")
    print("  index share of the bytes (mean over seeds, at each seed's no-loss density), per format:")
    share = defaultdict(list)
    for r in st:
        if float(r["density"]) < 1 and r["format"] != "dense":
            share[(r["granularity"], r["format"])].append(float(r["index_share"]))
    for g in GRANS:
        parts = [f"{f} {100 * statistics.mean(v):.0f}%" for (gg, f), v in sorted(share.items())
                 if gg == g]
        print(f"    {g:<8} " + ", ".join(parts))


def finding3(d):
    print("3. SCNN: fine / granularity, memory references and energy (mean of the per-seed "
          "ratios, their range, and the ratio of the references summed over seeds)")
    sc = rows(d, "scnn.csv")
    by = {(r["granularity"], r["match"], r["mode"], r["seed"]): r for r in sc}
    for match in ("density", "accuracy"):
        for g in GRANS[1:]:
            for mode in ("plain", "+row", "+kernel", "+group"):
                rr, ee, sf, sg = [], [], 0.0, 0.0
                for (gg, mm, md, s), r in by.items():
                    if gg != g or mm != match or md != mode or ("fine", match, mode, s) not in by:
                        continue
                    f = by[("fine", match, mode, s)]
                    rr.append(float(f["memory_refs"]) / float(r["memory_refs"]))
                    ee.append(float(f["energy_pj"]) / float(r["energy_pj"]))
                    sf += float(f["memory_refs"])
                    sg += float(r["memory_refs"])
                if rr:
                    dens = sorted({float(r["density"]) for (gg, mm, md, s), r in by.items()
                                   if gg == g and mm == match and md == mode})
                    print(f"  matched {match:<8} {g:<7} {mode:<7} refs {statistics.mean(rr):.2f}"
                          f" ({rng(rr)}; summed over seeds {sf / sg:.2f})  energy {statistics.mean(ee):.2f} ({rng(ee)})"
                          f"  densities {', '.join(f'{x:g}' for x in dens)}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    finding1(d)
    finding2(d)
    finding3(d)


if __name__ == "__main__":
    main()
