#!/usr/bin/env python3
"""The numbers behind docs/results.md's findings, from one finished study's CSVs.

    python3 scripts/headline_numbers.py STUDY_DIR [--sg BINARY]

STUDY_DIR holds what `sparsegrain study` wrote (no_loss.csv, curves.csv, storage.csv,
scnn.csv; points.jsonl for the paired curves). Prints, for the three findings of Mao et al.:
  1. the no-loss table (mean, 95% CI, range over seeds, paired verdict against fine) and
     the mean test top-1 curve of every granularity at each grid point (with the seeds
     that reached it) next to the dense reference retrained for the same epochs;
  2. storage at each seed's no-loss density (smallest format of the pruned layers with
     8-bit codebook values), the per-seed ratio to fine, and the index share of every
     format at matched accuracy; with --sg BINARY (a sparsegrain), also the same at
     matched density (0.5 to 0.05 achieved, every seed, from the chains' models);
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


# two-sided 95% Student t quantiles by degrees of freedom
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def paired_curves(d):
    """Per grid point, each granularity's test top-1 minus fine's and minus the dense
    reference's, paired by seed: mean ± 95% CI (t) in percentage points."""
    p = os.path.join(d, "points.jsonl")
    if not os.path.exists(p):
        return
    import json
    acc = {}
    with open(p) as f:
        for line in f:
            r = json.loads(line)
            if r.get("control"):
                continue
            acc[(r["granularity"], r["seed"], r["target"])] = r["top1"]
    targets = sorted({t for (g, s, t) in acc if g != "dense" and t < 1}, reverse=True)
    seeds = sorted({s for (g, s, t) in acc})

    def diff(g, h, t):
        v = [100 * (acc[(g, s, t)] - acc[(h, s, t)]) for s in seeds
             if (g, s, t) in acc and (h, s, t) in acc]
        if len(v) < 2:
            return "   n/a        "
        m, sd = statistics.mean(v), statistics.stdev(v)
        ci = T95.get(len(v) - 1, 1.96) * sd / len(v) ** 0.5
        mark = "*" if abs(m) > ci else " "
        return f"{m:+5.2f} ± {ci:4.2f}{mark}"
    print("  paired by seed, test top-1 in pp (* : the interval excludes 0)")
    print("  target   " + "".join(f"{g + ' - dense':<16}" for g in GRANS) +
          "".join(f"{g + ' - fine':<16}" for g in GRANS[1:]))
    for t in targets:
        print(f"  {t:<7}  " + "".join(f"{diff(g, 'dense', t):<16}" for g in GRANS) +
              "".join(f"{diff(g, 'fine', t):<16}" for g in GRANS[1:]))
    # filter pruning also removes the next layer's input channels: its grid point t keeps
    # about t^2 of the weights, so the fair pairing is by achieved density
    dens = {}
    with open(p) as f:
        for line in f:
            r = json.loads(line)
            if not r.get("control"):
                dens.setdefault((r["granularity"], r["target"]), []).append(r["density"])
    print("  filter against fine at about the same achieved density (paired by seed, pp):")
    for t in targets:
        ft = [(abs(statistics.mean(v) - t) / t, tt) for (g, tt), v in dens.items() if g == "filter"]
        if not ft or ("fine", t) not in dens:
            continue
        err, tt = min(ft)
        if err > 0.2:
            continue
        v = [100 * (acc[("filter", s, tt)] - acc[("fine", s, t)]) for s in seeds
             if ("filter", s, tt) in acc and ("fine", s, t) in acc]
        if len(v) < 2:
            continue
        m, sd = statistics.mean(v), statistics.stdev(v)
        ci = T95.get(len(v) - 1, 1.96) * sd / len(v) ** 0.5
        print(f"    fine {t:<6} vs filter's step {tt:<5} (density "
              f"{statistics.mean(dens[('filter', tt)]):.3f}): {m:+.2f} ± {ci:.2f}"
              f"{' *' if abs(m) > ci else ''}")


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


def storage_at_density(d, sg, targets):
    """Storage of the pruned layers at matched density for every granularity and seed
    (`sparsegrain storage --codebook-bits 8` on the chain's model nearest in achieved
    density; filter's thinned first, its dense smaller layers): the smallest format per
    layer, summed; the index share of those bytes."""
    import json
    import subprocess
    pts = {}
    with open(os.path.join(d, "points.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if not r.get("control"):
                pts[(r["granularity"], r["seed"], r["target"])] = r
    seeds = sorted({s for (_, s, _) in pts})
    import tempfile
    tmp = tempfile.mkdtemp()
    for t in targets:
        print(f"  at density {t} (each chain's point nearest in achieved density), 8-bit codebook "
              "values, smallest format per layer:")
        tot = {}
        for g in GRANS:
            for s in seeds:
                chain = [r for (gg, ss, _), r in pts.items() if gg == g and ss == s]
                if not chain:
                    continue
                # the chain's point nearest in achieved density (filter pruning also
                # removes the next layer's inputs: its grid point 0.3 keeps about 0.1)
                r = min(chain, key=lambda r: abs(r["density"] - t))
                if not os.path.exists(os.path.join(d, r["file"])):
                    print(f"    {os.path.join(d, r['file'])}: missing (the models stay in the "
                          "run's directory, runs/headline/NET: point this script there)")
                    return
                model = os.path.join(d, r["file"])
                if g == "filter":  # its fair store: the thinned dense model
                    model = os.path.join(tmp, f"thin-{s}.sgm")
                    subprocess.run([sg, "thin", os.path.join(d, r["file"]), "-o", model],
                                   capture_output=True, check=True)
                out = subprocess.run([sg, "storage", model, "--codebook-bits", "8", "--csv"],
                                     capture_output=True, text=True, check=True).stdout
                best = {}
                for row in csv.DictReader(out.splitlines()):
                    layer = row["layer"].removesuffix(".weight")
                    if layer not in r["layers"] or row["bytes"] in ("", "n/a"):
                        continue
                    if layer not in best or int(row["bytes"]) < int(best[layer]["bytes"]):
                        best[layer] = row
                b = sum(int(x["bytes"]) for x in best.values())
                ib = sum(int(x["index bits"] or 0) for x in best.values()) / 8
                fmts = sorted({x["format"] for x in best.values()})
                tot[(g, s)] = (b, ib, r["density"], fmts)
        for g in GRANS:
            v = [tot[(g, s)] for s in seeds if (g, s) in tot]
            if not v:
                continue
            ratio = [tot[("fine", s)][0] / tot[(g, s)][0] for s in seeds
                     if (g, s) in tot and ("fine", s) in tot]
            print(f"    {g:<8} density {statistics.mean(x[2] for x in v):.3f}"
                  f"  {statistics.mean(x[0] for x in v) / 1024:.1f} KiB"
                  f" ({'/'.join(sorted(set(f for x in v for f in x[3])))})"
                  f"  index {100 * statistics.mean(x[1] / x[0] for x in v):.0f}% of the bytes"
                  f"  fine/{g} {statistics.mean(ratio):.2f} ({rng(ratio)})")


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
    args = sys.argv[1:]
    sg = None
    if len(args) == 3 and args[1] == "--sg":
        sg = args[2]
    elif len(args) != 1:
        sys.exit(__doc__)
    d = args[0]
    finding1(d)
    paired_curves(d)
    finding2(d)
    if sg:
        storage_at_density(d, sg, [0.5, 0.3, 0.2, 0.1, 0.05])
    finding3(d)


if __name__ == "__main__":
    main()
