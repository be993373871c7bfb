#!/usr/bin/env bash
# The report in a real browser (Debian's headless Chromium): it loads, the DOM
# Chromium builds has every chart with all its series and every mask picture,
# nothing is logged to the console, and the screenshot is not blank. Skips (exit
# 0) when Chromium is not installed (INSTALL_CHROMIUM=1 scripts/install-deps.sh).
# A tiny real study (one baseline epoch, no retraining, a tolerance of 3 points so
# that pruned points count as no-loss and have mask pictures) keeps this under a minute.
set -euo pipefail
SG=${SG:-build/sparsegrain}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "SKIP: chromium is not installed (INSTALL_CHROMIUM=1 scripts/install-deps.sh)"
    exit 0
fi
command -v xmllint >/dev/null || { echo "xmllint is missing (apt-get install libxml2-utils)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$SG" study --quick --seeds 2 --baseline-epochs 1 --retrain-epochs 0 --densities 1,0.5,0.2,0.05 \
    --tolerance 3 -o "$tmp/s" > /dev/null
# storage and SCNN tables (synthetic: only the rendering is under test)
cat > "$tmp/s/storage.csv" <<'EOF'
granularity,format,value_bits,index_bits,filler_bits,meta_bits,bytes,ratio
fine,relidx,80000,10000,400,96,11312,8.84
kernel,relidx,440000,2200,0,96,55287,1.81
EOF
cat > "$tmp/s/scnn.csv" <<'EOF'
match,granularity,mode,refs_weight,refs_act,refs_acc_read,refs_acc_write,memory_refs,energy_pj
accuracy,fine,merged,1000,5000,20000,20000,46000,108600
accuracy,kernel,merged,5500,8000,25000,25000,63500,148040
EOF
"$SG" report "$tmp/s" > /dev/null
html=$tmp/s/report.html

run_browser() { # extra chromium arguments...
    local profile
    profile=$(mktemp -d "$tmp/profile.XXXX")
    timeout 60 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
        --enable-logging=stderr --v=0 "$@" "file://$html"
}
run_browser --dump-dom > "$tmp/dom.html" 2> "$tmp/dom.log"
run_browser --window-size=1200,3000 --screenshot="$tmp/shot.png" > /dev/null 2> "$tmp/shot.log"

# the page loaded: the DOM is complete and holds what the file holds
grep -q '</html>' "$tmp/dom.html"
grep -q '<title>Granularity of sparsity: lenet5 on mnist</title>' "$tmp/dom.html"
if grep -h 'CONSOLE' "$tmp/dom.log" "$tmp/shot.log"; then echo "console messages"; exit 1; fi
q() { xmllint --html --xpath "$1" "$2" 2> /dev/null; }
ids=$(grep -o '^<svg xmlns="http://www.w3.org/2000/svg" class="sg-chart" id="[^"]*"' "$html" | sed 's/.*id="//; s/"$//')
n_ids=$(echo "$ids" | wc -w)
test "$n_ids" -ge 9 # 3 accuracy, no-loss bars, storage 2, SCNN 3
test "$(q 'count(//svg)' "$tmp/dom.html")" -eq "$n_ids"
grans=$(tail -n +2 "$tmp/s/no_loss.csv" | wc -l)
for id in $ids; do
    in_dom=$(q "count(//svg[@id='$id']//*[contains(concat(' ', @class, ' '), ' series ')])" "$tmp/dom.html")
    in_file=$(grep -c . <(awk -v id="$id" '$0 ~ "id=\"" id "\"" && /^<svg/{on=1} on && /class="series"/{print} /^<\/svg>/{on=0}' "$html"))
    test "$in_dom" -ge 1 || { echo "chart $id has no series in the browser"; exit 1; }
    test "$in_dom" -eq "$in_file" || { echo "chart $id: $in_dom series in the browser, $in_file in the file"; exit 1; }
    case $id in acc-lin|acc-log)
        test "$in_dom" -eq $((grans + 1)) || { echo "$id: $in_dom series, wanted $grans + the dense reference"; exit 1; } ;;
    esac
done
pics=$(grep -c '<img ' "$html" || true)
test "$pics" -ge 1
test "$(q 'count(//img[starts-with(@src, "data:image/png;base64,")])' "$tmp/dom.html")" -eq "$pics"
# a blank page compresses to about 10 KB; the rendered report is much larger
size=$(stat -c %s "$tmp/shot.png")
test "$size" -gt 60000 || { echo "screenshot is only $size bytes"; exit 1; }
echo "browser: $n_ids charts with their series, $pics mask pictures, screenshot $size bytes: ok"
