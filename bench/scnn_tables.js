// Markdown tables from bench/results/scnn_decompose*.csv and scnn_validate.csv
// (means over seeds). Usage: node bench/scnn_tables.js [decompose|layers|validate]
const fs = require("fs");
const what = process.argv[2] || "decompose";
function load(f) {
  const [head, ...rows] = fs.readFileSync(f, "utf8").trim().split("\n");
  const k = head.split(",");
  return rows.map(r => Object.fromEntries(r.split(",").map((v, i) => [k[i], v])));
}
const steps = ["plain", "row", "kernel", "group"];
const label = {plain: "plain SCNN", row: "+ merge row", kernel: "+ merge kernel", group: "+ group index"};
function mean(rows, f) { return rows.reduce((s, r) => s + Number(r[f]), 0) / rows.length; }
function table(rows, keyName, keys) {
  const out = [`| ${keyName} | mechanisms | refs fine (G) | fine/vector | fine/kernel | + psum: fine/vector | fine/kernel | bits: fine/vector | fine/kernel | energy fine (mJ) | E fine/vector | E fine/kernel | seeds |`,
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|"];
  for (const key of keys)
    for (const st of steps) {
      const sel = g => rows.filter(r => r[keyName] === key && r.step === st && r.granularity === g);
      const f = sel("fine"), v = sel("vector"), k = sel("kernel");
      if (!f.length || !v.length || !k.length) continue;
      const m = (a, fld) => mean(a, fld), all = a => m(a, "memory_refs") + m(a, "psum_refs");
      out.push(`| ${key} | ${label[st]} | ${(m(f, "memory_refs") / 1e9).toFixed(3)} | ` +
        `${(m(f, "memory_refs") / m(v, "memory_refs")).toFixed(3)} | ${(m(f, "memory_refs") / m(k, "memory_refs")).toFixed(3)} | ` +
        `${(all(f) / all(v)).toFixed(3)} | ${(all(f) / all(k)).toFixed(3)} | ` +
        `${(m(f, "memory_bits") / m(v, "memory_bits")).toFixed(3)} | ${(m(f, "memory_bits") / m(k, "memory_bits")).toFixed(3)} | ${(m(f, "energy_pj") / 1e9).toFixed(2)} | ` +
        `${(m(f, "energy_pj") / m(v, "energy_pj")).toFixed(3)} | ${(m(f, "energy_pj") / m(k, "energy_pj")).toFixed(3)} | ${Math.min(...[f, v, k].map(a => new Set(a.map(r => r.seed)).size))} |`);
    }
  return out.join("\n");
}
if (what === "decompose") {
  const rows = load("bench/results/scnn_decompose.csv").map(r => ({...r, net: r.net}));
  console.log(table(rows, "net", [...new Set(rows.map(r => r.net))]));
} else if (what === "layers") {
  const rows = load("bench/results/scnn_decompose_layers.csv");
  console.log(table(rows, "layer", [...new Set(rows.map(r => r.layer))]));
} else {
  const rows = load("bench/results/scnn_validate.csv");
  console.log("| network | density (w = a) | SCNN cycles | DCNN cycles | speed-up | energy ratio | speed-up w/o first | energy w/o first | published (average of three networks) |\n|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.net} | ${r.density} | ${r.scnn_cycles} | ${r.dcnn_cycles} | ${r.speedup} | ${r.energy_ratio} | ${r.speedup_rest} | ${r.energy_ratio_rest} | 2.7x speed, 2.3x energy |`);
}
