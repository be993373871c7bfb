#!/usr/bin/env python3
"""Replays a study's points.jsonl through the study's task schedule on N cores and
predicts its wall time (the per-point 'seconds' are the work; the schedule decides
how it packs).

    python3 scripts/study_sim.py STUDY_DIR/points.jsonl [--jobs 2] [--threads 1]
        [--baseline-seconds S] [--thread-speedup X] [--post S] [--schedule old|new|both]

Schedules:
  old  the study before the ready-list scheduler: with --threads 1 one task list
       (baselines, every seed's pruned chains, the dense reference chains) pulled in list
       order, a worker waiting (idle) for a task's baseline; the dense chain runs as far as
       the pruned points that exist when it starts; then a global 'reference' phase runs
       the dense chains' remaining steps below the grid. With --threads > 1 the baselines
       are a phase of their own (jobs/threads at once) before the chains.
  new  cli/study_work.c's ready list: a worker takes the first task in list order whose
       dependencies are met (no worker waits while another task could run); the dense
       reference of a seed follows its pruned chains live (a step runs once a pruned chain
       of the seed has reached it, or on the grid) and is put back when it has caught up.
       --order picks the list order; the study's is gran-major-dense-first (baselines,
       every seed's reference, then each granularity over the seeds, then the
       post-processing items (one thread each), each once its seed's reference has
       finished).

Checked against make study on the idle 2-core AMD EPYC (tree 3895dc4, 22:05 wall):
    python3 scripts/study_sim.py study/points.jsonl --baseline-seconds 150 --post 44 --startup 2
predicts 21:59 for the old schedule.

A baseline point records no seconds in studies before this script; give
--baseline-seconds (one baseline on --threads threads), else it is estimated as
baseline_epochs x the median retraining point.
"""
import argparse
import heapq
import json
import statistics
import sys

TRACE = False
POST_CPU = 0.0


def load(path):
    pts = [json.loads(l) for l in open(path) if l.strip()]
    chains = {}
    base = {}
    for p in pts:
        if p.get("control"):
            continue
        g, s, k = p["granularity"], p["seed"], p["step"]
        if g == "dense" and k == 0:
            base[s] = p
            continue
        chains.setdefault((g, s), {})[k] = p["seconds"]
    out = {}
    for key, steps in chains.items():
        n = max(steps)
        out[key] = [steps.get(i, 0.0) for i in range(1, n + 1)]
    return base, out


def grid_len(path):
    import os
    sj = os.path.join(os.path.dirname(os.path.abspath(path)), "study.json")
    try:
        j = json.load(open(sj))
        return len(j["grid"]), j.get("granularities"), j.get("baseline_epochs", 15)
    except OSError:
        return None, None, 15


class Sim:
    def __init__(self, seeds, grans, chains, bsec, ngrid, jobs):
        self.seeds, self.grans, self.chains = seeds, grans, chains
        self.bsec, self.ngrid, self.jobs = bsec, ngrid, jobs
        self.idle = 0.0


def run_list(tasks, workers, t0, done_at, pruned_progress, ngrid, chains, policy):
    """Generic event simulation. tasks: dicts with kind, seed, gran, deps (indices).
    policy 'inorder': worker pulls the next index and waits for deps (old);
    'ready': worker takes the first ready task (new). Returns the end time and idle
    core-seconds."""
    n = len(tasks)
    state = ["free"] * n  # free, run, done
    finish = [None] * n
    # per task running progress for dense followers: next step
    nxt = [1] * n
    free_at = [(t0, w) for w in range(workers)]
    heapq.heapify(free_at)
    idle = 0.0
    pos = 0  # inorder pointer
    end = t0
    # pruned step completion times: pruned_progress[(g,s)] = list of times (filled as run)
    while True:
        t, w = heapq.heappop(free_at)
        if policy == "inorder":
            if pos >= n:
                end = max(end, t)
                if not free_at:
                    break
                continue
            i = pos
            pos += 1
            task = tasks[i]
            start = t
            for d in task["deps"]:
                # deps are earlier in the list: taken earlier, their end is known
                if finish[d] > start:
                    idle += finish[d] - start
                    start = finish[d]
            te = run_task(task, start, pruned_progress, ngrid, chains, nxt, i, live=False)
            finish[i] = te
            state[i] = "done"
            heapq.heappush(free_at, (te, w))
            end = max(end, te)
        else:
            # the first ready task
            pick = None
            for i, task in enumerate(tasks):
                if state[i] != "free":
                    continue
                if any(finish[d] is None or finish[d] > t for d in task["deps"]):
                    continue
                if task["kind"] == "follow":
                    s = task["seed"]
                    need = max(ngrid, depth_at(pruned_progress, s, t))
                    allp = all(
                        finish[j] is not None and finish[j] <= t
                        for j, u in enumerate(tasks)
                        if u["kind"] == "chain" and u["seed"] == s
                    )
                    total = len(chains.get(("dense", s), []))
                    if nxt[i] > total:
                        if allp:
                            state[i] = "done"
                            finish[i] = t
                        continue
                    if nxt[i] > need and not allp:
                        continue
                pick = i
                break
            if pick is None:
                if all(st == "done" for st in state):
                    end = max(end, t)
                    if not free_at:
                        break
                    continue
                # wait for the next event: the next worker to finish, or a pruned step
                cand = [ft for ft, _ in free_at if ft > t]
                for times in pruned_progress.values():
                    cand += [x for x in times if x > t]
                if not cand:
                    raise RuntimeError("deadlock in the simulation")
                t2 = min(cand)
                idle += t2 - t
                heapq.heappush(free_at, (t2, w))
                continue
            task = tasks[pick]
            state[pick] = "run"
            if TRACE:
                print("  %7.1f w%d %s %s s%s%s" % (t, w, task["kind"], task.get("gran", ""), task["seed"],
                      " from step %d" % nxt[pick] if task["kind"] == "follow" else ""))
            if task["kind"] == "follow":
                te, fin = run_follow(task, t, pruned_progress, ngrid, chains, nxt, pick, tasks, finish)
                if fin:
                    state[pick] = "done"
                    finish[pick] = te
                else:
                    state[pick] = "free"
            else:
                te = run_task(task, t, pruned_progress, ngrid, chains, nxt, pick, live=True)
                finish[pick] = te
                state[pick] = "done"
            heapq.heappush(free_at, (te, w))
            end = max(end, te)
    return end, idle, finish


def depth_at(progress, seed, t):
    d = 0
    for (g, s), times in progress.items():
        if s != seed:
            continue
        k = sum(1 for x in times if x <= t)
        d = max(d, k)
    return d


def run_task(task, start, progress, ngrid, chains, nxt, i, live):
    k = task["kind"]
    if k == "baseline":
        return start + task["sec"]
    if k == "chain":
        steps = chains[(task["gran"], task["seed"])]
        t = start
        times = []
        for sec in steps:
            t += sec
            times.append(t)
        progress[(task["gran"], task["seed"])] = times
        return t
    if k == "dense":  # old: as far as the pruned points that exist at its start
        s = task["seed"]
        steps = chains.get(("dense", s), [])
        lo = task.get("from", 1)
        hi = task.get("to")
        if hi is None:
            hi = max(ngrid, depth_at(progress, s, start))
        t = start
        for st in range(lo, min(hi, len(steps)) + 1):
            t += steps[st - 1]
        task["did"] = min(hi, len(steps))
        return t
    raise ValueError(k)


def run_follow(task, start, progress, ngrid, chains, nxt, i, tasks, finish):
    s = task["seed"]
    steps = chains.get(("dense", s), [])
    t = start
    while nxt[i] <= len(steps):
        need = max(ngrid, depth_at(progress, s, t))
        if nxt[i] > need:
            allp = all(finish[j] is not None and finish[j] <= t for j, u in enumerate(tasks)
                       if u["kind"] == "chain" and u["seed"] == s)
            if not allp:
                return t, False
        t += steps[nxt[i] - 1]
        nxt[i] += 1
    return t, True


def simulate_old(seeds, grans, chains, bsec, ngrid, jobs, threads, speedup):
    tasks = []
    base_at = {}
    t0 = 0.0
    progress = {}
    idle = 0.0
    if threads == 1:
        for s in seeds:
            base_at[s] = len(tasks)
            tasks.append({"kind": "baseline", "seed": s, "sec": bsec, "deps": []})
    else:
        w = max(1, jobs // threads)
        btasks = [{"kind": "baseline", "seed": s, "sec": bsec / speedup, "deps": []} for s in seeds]
        end, idl, _ = run_list(btasks, min(w, len(btasks)), t0, None, progress, ngrid, chains, "inorder")
        idle += idl + (jobs - min(w, len(btasks)) * threads) * (end - t0) / max(threads, 1)
        t0 = end
    for s in seeds:
        for g in grans:
            if (g, s) in chains:
                tasks.append({"kind": "chain", "seed": s, "gran": g,
                              "deps": [base_at[s]] if s in base_at else []})
    dense_tasks = []
    for s in seeds:
        dense_tasks.append(len(tasks))
        tasks.append({"kind": "dense", "seed": s, "deps": [base_at[s]] if s in base_at else []})
    end, idl, _ = run_list(tasks, min(jobs, len(tasks)), t0, None, progress, ngrid, chains, "inorder")
    idle += idl + sum(0 for _ in [])
    # phase 3: the rest of each dense chain
    rest = []
    for i in dense_tasks:
        s = tasks[i]["seed"]
        n = len(chains.get(("dense", s), []))
        if tasks[i]["did"] < n:
            rest.append({"kind": "dense", "seed": s, "deps": [], "from": tasks[i]["did"] + 1, "to": n})
    if rest:
        end, idl, _ = run_list(rest, min(jobs, len(rest)), end, None, progress, ngrid, chains, "inorder")
        idle += idl
    return end, idle


def simulate_new(seeds, grans, chains, bsec, ngrid, jobs, threads, speedup, order):
    tasks = []
    base_at = {}
    t0 = 0.0
    progress = {}
    idle = 0.0
    if threads == 1:
        for s in seeds:
            base_at[s] = len(tasks)
            tasks.append({"kind": "baseline", "seed": s, "sec": bsec, "deps": []})
    else:
        w = max(1, jobs // threads)
        btasks = [{"kind": "baseline", "seed": s, "sec": bsec / speedup, "deps": []} for s in seeds]
        end, idl, _ = run_list(btasks, min(w, len(btasks)), t0, None, progress, ngrid, chains, "ready")
        t0 = end
    dep = lambda s: [base_at[s]] if s in base_at else []
    follow = [{"kind": "follow", "seed": s, "deps": dep(s)} for s in seeds]
    if order.startswith("gran-major"):
        # every seed's first granularity, then every seed's second, ...: the deep
        # chains (fine) first, the shallow ones (filter) last, whatever the seed
        if order == "gran-major-dense-first":
            tasks += follow
        for g in grans:
            for s in seeds:
                if (g, s) in chains:
                    tasks.append({"kind": "chain", "seed": s, "gran": g, "deps": dep(s)})
        if order != "gran-major-dense-first":
            tasks += follow
    else:
        for s in seeds:
            if order == "dense-first":
                tasks.append(follow[seeds.index(s)])
            for g in grans:
                if (g, s) in chains:
                    tasks.append({"kind": "chain", "seed": s, "gran": g, "deps": dep(s)})
            if order == "dense-last":
                tasks.append(follow[seeds.index(s)])
        if order == "dense-end":
            tasks += follow
    if POST_CPU > 0:
        items = [(g, s) for g in grans for s in seeds]
        for g, s in items:
            fi = next(i for i, t in enumerate(tasks) if t["kind"] == "follow" and t["seed"] == s)
            tasks.append({"kind": "baseline", "seed": s, "gran": "post " + g, "sec": POST_CPU / len(items),
                          "deps": [fi]})
    end, idl, _ = run_list(tasks, min(jobs, len(tasks)), t0, None, progress, ngrid, chains, "ready")
    return end, idle + idl


def fmt(s):
    return "%d:%02d" % (int(s) // 60, int(s) % 60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("points")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--baseline-seconds", type=float, default=None,
                    help="one baseline on one thread (default: from the points, else estimated)")
    ap.add_argument("--thread-speedup", type=float, default=1.8,
                    help="a baseline on --threads threads is this much faster than on one")
    ap.add_argument("--post", type=float, default=0.0,
                    help="CPU seconds of the post-processing (storage, quantize, SCNN, infer): old: "
                         "after the points over --jobs workers; new: one task per (granularity, "
                         "seed) item once its seed's reference is done")
    ap.add_argument("--startup", type=float, default=0.0, help="seconds before the first task (data loading)")
    ap.add_argument("--seeds", type=int, default=None, help="use the first N seeds only")
    ap.add_argument("--schedule", default="both", choices=["old", "new", "both"])
    ap.add_argument("--order", default="gran-major-dense-first", choices=["dense-first", "dense-last", "dense-end", "gran-major", "gran-major-dense-first"])
    ap.add_argument("--clip", type=float, default=5.0,
                    help="a point over this many times the median counts as the median (0: keep)")
    ap.add_argument("--trace", action="store_true", help="print when each task starts (new schedule)")
    a = ap.parse_args()
    global TRACE, POST_CPU
    TRACE = a.trace
    POST_CPU = a.post
    base, chains = load(a.points)
    allsec = sorted(x for v in chains.values() for x in v)
    med = statistics.median(allsec)
    clipped = 0
    for v in chains.values():
        for i, x in enumerate(v):
            if a.clip and x > a.clip * med:  # a point stalled by a suspended machine
                v[i] = med
                clipped += 1
    if clipped:
        print("%d points over %gx the median (%.1f s) counted as the median" % (clipped, a.clip, med))
    ngrid, grans, bepochs = grid_len(a.points)
    seeds = sorted({s for (_, s) in chains} | set(base))
    if a.seeds:
        seeds = seeds[: a.seeds]
    if not grans:
        grans = sorted({g for (g, _) in chains if g != "dense"})
    if ngrid is None:
        ngrid = min(len(v) for (g, _), v in chains.items() if g == "dense")
    pts = [x for (g, s), v in chains.items() if s in seeds for x in v]
    bsec = a.baseline_seconds
    if bsec is None:
        bs = [base[s].get("seconds", 0) for s in seeds if s in base]
        bsec = statistics.mean(bs) if bs and min(bs) > 0 else bepochs * statistics.median(pts)
    work = sum(pts) + bsec * len(seeds)
    print("%d seeds, %d points, work %.0f s (%.0f s in points, %d baselines of %.0f s), "
          "perfect packing on %d cores: %s (with the post-processing %s)" %
          (len(seeds), len(pts), work, sum(pts), len(seeds), bsec, a.jobs, fmt(work / a.jobs),
           fmt((work + a.post) / a.jobs)))
    for sch in (["old", "new"] if a.schedule == "both" else [a.schedule]):
        if sch == "old":
            end, idle = simulate_old(seeds, grans, chains, bsec, ngrid, a.jobs, a.threads, a.thread_speedup)
        else:
            end, idle = simulate_new(seeds, grans, chains, bsec, ngrid, a.jobs, a.threads,
                                     a.thread_speedup, a.order)
        post_after = sch == "old"
        pw = max(1, a.jobs // a.threads) * (a.thread_speedup if a.threads > 1 else 1)
        wall = a.startup + end + (a.post / pw if post_after else 0)
        print("%-4s jobs %d threads %d: points end %s, wall %s (%.0f s), idle core-seconds %.0f"
              % (sch, a.jobs, a.threads, fmt(a.startup + end), fmt(wall), wall,
                 a.jobs * (wall - a.startup) - work - a.post))


if __name__ == "__main__":
    sys.exit(main())
