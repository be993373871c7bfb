#!/usr/bin/env bash
# The report of a real quick study (two seeds, so the charts have bands): the page
# parses as XML and as HTML, every chart is valid SVG, every number in its tables
# equals the study's CSV files (no_loss.csv, curves.csv) and `stats` of the
# no-loss models; storage and SCNN sections appear only with their CSV files;
# errors for folders that are not studies; `draw` writes a PNG of the size it says.
set -euo pipefail
SG=${SG:-build/sparsegrain}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v xmllint >/dev/null || { echo "xmllint is missing (apt-get install libxml2-utils)"; exit 1; }

study=(study --quick --seeds 2 --granularities fine,kernel,filter)
if [ -n "${SG_REPORT_STUDY:-}" ]; then # development: reuse a folder made by the same command
    cp -r "$SG_REPORT_STUDY" "$tmp/s"
    rm -f "$tmp/s/report.html" "$tmp/s/storage.csv" "$tmp/s/scnn.csv"
else
    "$SG" "${study[@]}" -o "$tmp/s" > /dev/null
fi
"$SG" report "$tmp/s" > "$tmp/out"
grep -q "^wrote $tmp/s/report.html (" "$tmp/out"
html=$tmp/s/report.html

# ---- well-formed: the XML parser, then the HTML parser, whose only complaints may be
# the HTML5 and SVG element names it predates (libxml2's HTML parser knows HTML 4)
xmllint --noout "$html"
xmllint --html --noout "$html" 2> "$tmp/html.err" || { cat "$tmp/html.err"; exit 1; }
bad=$(grep -E '^[^ ].*:[0-9]+: HTML parser error' "$tmp/html.err" |
      grep -v -E 'HTML parser error : Tag (header|nav|main|section|figure|figcaption|footer|svg|defs|clippath|rect|path|g|circle|text) invalid$' || true)
[ -z "$bad" ] || { echo "HTML parser errors:"; echo "$bad"; exit 1; }
# every chart on its own is valid SVG (one per <svg ...> ... </svg> block)
awk -v dir="$tmp" '/^<svg xmlns=/{n++; f=dir "/chart" n ".svg"} f{print > f} /^<\/svg>/{close(f); f=""}' "$html"
nsvg=$(ls "$tmp"/chart*.svg | wc -l)
test "$nsvg" -eq "$(grep -c '^<svg xmlns=' "$html")"
test "$nsvg" -ge 3 # linear, log (and a zoom when points fall far), no-loss bars
for f in "$tmp"/chart*.svg; do xmllint --noout "$f"; done
# each accuracy chart has a line per granularity and the dense reference
for id in acc-lin acc-log; do
    n=$(xmllint --xpath "count(//*[local-name()='svg'][@id='$id']//*[local-name()='path'][@class='series'])" "$html")
    test "$n" -eq 4 || { echo "$id has $n series, wanted 4"; exit 1; }
done

# ---- numbers: each cell's exact value (data-v) equals the CSV text, and the shown text
# equals it within half a unit of its last digit (top-1 columns are shown in percent)
compare() { # table-id csv-file key-columns
    xmllint --xpath "//table[@id='$1']/tbody/tr" "$html" > "$tmp/rows"
    awk -v keys="$3" -v what="$1" '
        BEGIN { FS = "," }
        FNR == NR {
            if (FNR == 1) { for (i = 1; i <= NF; i++) col[$i] = i; next }
            n = split(keys, k, " "); key = ""
            for (i = 1; i <= n; i++) key = key (i > 1 ? "|" : "") $(col[k[i]])
            row[key] = $0; rows++; next
        }
        {
            if (!match($0, /data-key="[^"]*"/)) next
            key = substr($0, RSTART + 10, RLENGTH - 11)
            if (!(key in row)) { print what ": row " key " is not in the CSV"; bad++; next }
            seen++; split(row[key], f, ",")
            rest = $0
            while (match(rest, /data-col="[^"]*" data-v="[^"]*">[^<]*</)) {
                cell = substr(rest, RSTART, RLENGTH - 1); rest = substr(rest, RSTART + RLENGTH)
                split(cell, p, "\""); c = p[2]; v = p[4]; t = substr(cell, index(cell, ">") + 1)
                if (!(c in col)) { print what ": column " c " is not in the CSV"; bad++; continue }
                if (v != f[col[c]]) { print what " " key " " c ": page " v ", CSV " f[col[c]]; bad++ }
                cells++
                shown = t; pct = sub(/%$/, "", shown)
                if (shown !~ /^-?[0-9.]+$/) { if (v != "" && v + 0 != -1) { print what " " key " " c ": shows " t; bad++ } ; continue }
                scale = (c ~ /top1/) ? 100 : 1
                d = index(shown, ".") ? length(shown) - index(shown, ".") : 0
                diff = shown - scale * v; if (diff < 0) diff = -diff
                if (diff > 0.5 * 10 ^ -d + 1e-9) { print what " " key " " c ": shows " t " for " v; bad++ }
            }
        }
        END {
            if (seen != rows) { print what ": " seen " rows on the page, " rows " in the CSV"; bad++ }
            printf "%s: %d rows, %d cells checked\n", what, seen, cells
            exit bad > 0
        }' "$2" "$tmp/rows"
}
compare t-noloss "$tmp/s/no_loss.csv" "granularity"
compare t-curves "$tmp/s/curves.csv" "granularity control step"

# the structure tables equal `stats --csv` of the no-loss models (same %.4f text)
for g in fine kernel filter; do
    file=$(xmllint --xpath "string(//table[@data-gran='$g']/preceding-sibling::p[1])" "$html" | sed -n 's/.*file \(.*\.sgm\)$/\1/p')
    if [ -z "$file" ]; then
        grep -q "No pruned point of seed 1 met the tolerance" "$html" || { echo "$g: no model and no note"; exit 1; }
        continue
    fi
    "$SG" stats "$tmp/s/$file" --csv | tail -n +2 | grep -v '^total,' | cut -d, -f1,4- > "$tmp/stats.csv"
    xmllint --xpath "//table[@data-gran='$g']/tbody/tr" "$html" |
        sed -E 's#</td>#,#g; s#<[^>]*>##g; s#,$##' | cut -d, -f1,4,6- > "$tmp/page.csv"
    diff "$tmp/stats.csv" "$tmp/page.csv" || { echo "$g: structure table differs from stats"; exit 1; }
done

# ---- the settings and provenance
grep -q "sparsegrain ${study[*]} -o " "$html"
grep -q "<td>retrain_epochs</td><td>1</td>" "$html"
grep -q "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$html"
if grep -q '<script' "$html"; then echo 'the report has a script' >&2; exit 1; fi
# the study wrote storage.csv and scnn.csv: their sections are there; without the files
# they are not
grep -q '<section id="storage"' "$html"
grep -q '<section id="scnn"' "$html"
# filter pruning: the thinned no-loss model is measured too, and shown
for csv in storage scnn infer; do
    grep -q '^filter (thinned),\(accuracy,\)\?1,' "$tmp/s/$csv.csv" || { echo "$csv.csv has no thinned rows"; exit 1; }
done
if grep -q '^fine (thinned)\|^kernel (thinned)' "$tmp/s/storage.csv"; then echo 'thinned rows for fine or kernel'; exit 1; fi
ls "$tmp"/s/models/filter-s1-*-thin.sgm > /dev/null
grep -q '<td>filter (thinned)</td>' "$html"
rm -f "$tmp/s/storage.csv" "$tmp/s/scnn.csv"
"$SG" report "$tmp/s" -o "$tmp/bare.html" > /dev/null
if grep -q '<section id="storage"' "$tmp/bare.html"; then echo 'storage section without storage.csv' >&2; exit 1; fi
if grep -q '<section id="scnn"' "$tmp/bare.html"; then echo 'SCNN section without scnn.csv' >&2; exit 1; fi
# the study's CPU inference speed (infer.csv): its section shows every row
test "$(xmllint --xpath "count(//table[@id='t-infer']/tbody/tr)" "$html")" -eq "$(($(wc -l < "$tmp/s/infer.csv") - 1))"
test "$(xmllint --xpath "count(//*[local-name()='svg'][@id='infer-grouped-0-0']//*[local-name()='g'][@class='series'])" "$html")" -eq 2

# ---- storage.csv and scnn.csv: sections with charts and the files' own cells
# (synthetic tables: only the rendering is under test here)
cat > "$tmp/s/storage.csv" <<'EOF'
granularity,format,value_coding,values,value_bits,index_bits,filler_bits,meta_bits,pad_bits,bytes,ratio,new_column
fine,relidx,f32,2500,80000,10000,400,96,0,11312,8.84,"a, b"
kernel,relidx,f32,13750,440000,2200,0,96,0,55287,1.81,
EOF
cat > "$tmp/s/scnn.csv" <<'EOF'
match,granularity,density,mode,refs_weight,refs_weight_index,refs_act,refs_acc_read,refs_acc_write,memory_refs,energy_pj
accuracy,fine,0.1,merged,1000,1000,5000,20000,20000,47000,108600
accuracy,kernel,0.55,merged,5500,220,8000,25000,25000,63720,148040
EOF
"$SG" report "$tmp/s" -o "$tmp/r2.html" > "$tmp/out2"
grep -q "storage section from $tmp/s/storage.csv" "$tmp/out2"
xmllint --noout "$tmp/r2.html"
test "$(xmllint --xpath "count(//table[@id='t-storage']/tbody/tr)" "$tmp/r2.html")" -eq 2
test "$(xmllint --xpath "string(//table[@id='t-storage']/tbody/tr[1]/td[12])" "$tmp/r2.html")" = "a, b"
test "$(xmllint --xpath "string(//table[@id='t-scnn']/tbody/tr[2]/td[@data-col='energy_pj'])" "$tmp/r2.html")" = 148040
for id in storage-stack-0 storage-grouped-0-1 scnn-stack-0 scnn-grouped-0-1 scnn-grouped-1-2; do
    n=$(xmllint --xpath "count(//*[local-name()='svg'][@id='$id']//*[local-name()='g'][@class='series'])" "$tmp/r2.html")
    test "$n" -ge 1 || { echo "chart $id has no series"; exit 1; }
done
# five _bits columns stack (value, index, filler, meta, pad); five refs_ columns
test "$(xmllint --xpath "count(//*[local-name()='svg'][@id='storage-stack-0']//*[local-name()='g'][@class='series'])" "$tmp/r2.html")" -eq 5
test "$(xmllint --xpath "count(//*[local-name()='svg'][@id='scnn-stack-0']//*[local-name()='g'][@class='series'])" "$tmp/r2.html")" -eq 5

# ---- options and errors
"$SG" report "$tmp/s" --log-x --band std -o "$tmp/r3.html" > /dev/null
grep -q 'id="acc-log"' "$tmp/r3.html" && ! grep -q 'id="acc-lin"' "$tmp/r3.html"
"$SG" report "$tmp/s" --json -o "$tmp/r4.html" | grep -q "\"output\": \"$tmp/r4.html\""
set +e
"$SG" report "$tmp/none" 2> "$tmp/err"; rc1=$?
mkdir "$tmp/empty"; "$SG" report "$tmp/empty" 2> "$tmp/err2"; rc2=$?
"$SG" report "$tmp/s" --band nope 2> /dev/null; rc3=$?
"$SG" report 2> /dev/null; rc4=$?
set -e
test $rc1 -eq 1 && grep -q "sparsegrain: error: $tmp/none" "$tmp/err"
test $rc2 -eq 1 && grep -q "is not a study folder: it has no points.jsonl" "$tmp/err2"
test $rc3 -eq 2 && test $rc4 -eq 2

# ---- draw: a PNG whose header has the size the command printed
"$SG" draw "$tmp/s/models/kernel-s1-03.sgm" -o "$tmp/k.png" > "$tmp/draw.out"
test "$(head -c 8 "$tmp/k.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
w=$(od -An -tu1 -j16 -N4 "$tmp/k.png" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}')
h=$(od -An -tu1 -j20 -N4 "$tmp/k.png" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}')
grep -q " ${w}x${h} pixels" "$tmp/draw.out"
grep -q "conv2.weight, 50x20x5x5" "$tmp/draw.out"
echo "report of a quick study: well-formed, $nsvg charts, tables equal the CSV files and stats: ok"
