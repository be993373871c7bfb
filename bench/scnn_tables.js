// Markdown tables from bench/results/scnn_decompose*.csv and scnn_validate.csv.
// Usage: node bench/scnn_tables.js [decompose|layers|validate] [STEPS]
//   STEPS: comma-separated subset of plain,row,kernel,group (default all), e.g. the
//   doc's VGG-16 layer table is `node bench/scnn_tables.js layers plain,group`.
// Counts are deterministic per seed, so a repeated (network, layer, granularity,
// step, seed) row is a rerun: the last one is kept. Decomposition ratios are taken
// per seed (fine and coarse of the same seed) and shown as the mean over seeds with
// [min, max] when there is more than one seed; "refs fine" and "energy fine" are
// means. The validation rows are seed 1, one per (network, density).
const fs = require("fs");
const what = process.argv[2] || "decompose";
function load(f) {
  const [head, ...rows] = fs.readFileSync(f, "utf8").trim().split("\n");
  const k = head.split(",");
  return rows.map(r => Object.fromEntries(r.split(",").map((v, i) => [k[i], v])));
}
function lastOf(rows, key) {
  const m = new Map();
  for (const r of rows) m.set(key(r), r);
  return [...m.values()];
}
const allSteps = ["plain", "row", "kernel", "group"];
const steps = process.argv[3] ? process.argv[3].split(",") : allSteps;
for (const s of steps) if (!allSteps.includes(s)) { console.error(`unknown step ${s}`); process.exit(1); }
const label = {plain: "plain SCNN", row: "+ merge row", kernel: "+ merge kernel", group: "+ group index"};
const mean = a => a.reduce((s, x) => s + x, 0) / a.length;
function spread(a, digits = 3) {
  const m = mean(a).toFixed(digits);
  if (a.length < 2) return m;
  return `${m} [${Math.min(...a).toFixed(digits)}, ${Math.max(...a).toFixed(digits)}]`;
}
function table(rows, keyName, keys) {
  rows = lastOf(rows, r => [r.net, r.layer, r.granularity, r.step, r.seed].join("/"));
  const out = [`| ${keyName} | mechanisms | refs fine (G) | fine/vector | fine/kernel | + psum: fine/vector | fine/kernel | bits: fine/vector | fine/kernel | energy fine (mJ) | E fine/vector | E fine/kernel | seeds |`,
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|"];
  for (const key of keys)
    for (const st of steps) {
      const at = (g, seed) => rows.find(r => r[keyName] === key && r.step === st && r.granularity === g && r.seed === seed);
      const seeds = [...new Set(rows.filter(r => r[keyName] === key && r.step === st).map(r => r.seed))]
        .filter(s => at("fine", s) && at("vector", s) && at("kernel", s)).sort((a, b) => a - b);
      if (!seeds.length) continue;
      const per = fn => seeds.map(s => fn(at("fine", s), at("vector", s), at("kernel", s)));
      const n = (r, f) => Number(r[f]), all = r => n(r, "memory_refs") + n(r, "psum_refs");
      out.push(`| ${key} | ${label[st]} | ${(mean(per(f => n(f, "memory_refs"))) / 1e9).toFixed(3)} | ` +
        `${spread(per((f, v) => n(f, "memory_refs") / n(v, "memory_refs")))} | ${spread(per((f, v, k) => n(f, "memory_refs") / n(k, "memory_refs")))} | ` +
        `${spread(per((f, v) => all(f) / all(v)))} | ${spread(per((f, v, k) => all(f) / all(k)))} | ` +
        `${spread(per((f, v) => n(f, "memory_bits") / n(v, "memory_bits")))} | ${spread(per((f, v, k) => n(f, "memory_bits") / n(k, "memory_bits")))} | ` +
        `${(mean(per(f => n(f, "energy_pj"))) / 1e9).toFixed(2)} | ` +
        `${spread(per((f, v) => n(f, "energy_pj") / n(v, "energy_pj")))} | ${spread(per((f, v, k) => n(f, "energy_pj") / n(k, "energy_pj")))} | ${seeds.join(", ")} |`);
    }
  return out.join("\n");
}
if (what === "decompose") {
  const rows = load("bench/results/scnn_decompose.csv");
  console.log(table(rows, "net", [...new Set(rows.map(r => r.net))]));
} else if (what === "layers") {
  const rows = load("bench/results/scnn_decompose_layers.csv");
  console.log(table(rows, "layer", [...new Set(rows.map(r => r.layer))]));
} else if (what === "validate") {
  const rows = lastOf(load("bench/results/scnn_validate.csv"), r => r.net + "/" + r.density);
  const nets = [...new Set(rows.map(r => r.net))];
  rows.sort((a, b) => nets.indexOf(a.net) - nets.indexOf(b.net) || b.density - a.density);
  console.log("| network | density (w = a) | SCNN cycles | DCNN cycles | speed-up | energy ratio | speed-up w/o first | energy w/o first | published (average of three networks) |\n|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.net} | ${r.density} | ${r.scnn_cycles} | ${r.dcnn_cycles} | ${r.speedup} | ${r.energy_ratio} | ${r.speedup_rest} | ${r.energy_ratio_rest} | 2.7x speed, 2.3x energy |`);
} else {
  console.error("usage: node bench/scnn_tables.js [decompose|layers|validate] [STEPS]");
  process.exit(1);
}
