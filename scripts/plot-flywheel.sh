#!/usr/bin/env bash
# Plots the flywheel's weeks from test_al_flywheel's TSV: precision@k per week of the flywheel
# (verdicts weigh the daily lists, classifier retrained weekly), the same scorer without feedback ("static"),
# the residual alone and the rules alone; below, the alerts each raised and the technicians'
# labels per week.
#   scripts/plot-flywheel.sh [IN.tsv] [OUT.png]   (defaults build/flywheel.tsv, docs/flywheel.png)
# Make the TSV first: ctest --test-dir build -R test_al_flywheel (or FLYWHEEL_TSV=PATH
# build/tests/alerter/test_al_flywheel). Needs gnuplot (apt-get install gnuplot-nox).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
in=${1:-$root/build/flywheel.tsv}
out=${2:-$root/docs/flywheel.png}
[ -s "$in" ] || { echo "plot-flywheel: $in missing (run test_al_flywheel first)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot-flywheel: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
# columns: week start classifier labels_week labels_total, then alerts faults precision of
# flywheel (6-8), static (9-11), residual (12-14), rules (15-17)
head -1 "$in" | grep -q $'^week\tstart\tclassifier\tlabels_week\tlabels_total\tflywheel_alerts' ||
  { echo "plot-flywheel: $in is not test_al_flywheel's TSV" >&2; exit 1; }
weeks=$(($(wc -l < "$in") - 1))
mkdir -p "$(dirname "$out")"
gnuplot <<EOF
set terminal pngcairo size 1000,760 font "sans,10" noenhanced
set output "$out"
set datafile separator "\t"
set key autotitle columnhead
set multiplot layout 2,1 title "The flywheel: 10 simulated buildings x 20 flats, alerts judged by hvs-alerter's defaults, answered by a simulated technician"
set grid
set lmargin 10
set xrange [0.5:$weeks + 0.5]
set xtics 1
set format x ""
set yrange [0:*]
set ylabel "precision@k (share of raised alerts on a fault)"
set key outside right top vertical
plot "$in" using 1:8 with linespoints lw 2.5 pt 7 lc rgb "#d62728" title "flywheel", \
     "$in" using 1:11 with linespoints lw 1.5 pt 5 dt 2 lc rgb "#7f7f7f" title "no feedback", \
     "$in" using 1:14 with linespoints lw 1.5 pt 9 lc rgb "#1f77b4" title "residual only", \
     "$in" using 1:17 with linespoints lw 1.5 pt 13 dt 3 lc rgb "#2ca02c" title "rules only", \
     "$in" using 1:(\$3 > 0 ? 0.005 : 1/0):(sprintf("classifier v%d", \$3)) with labels font "sans,8" notitle
set yrange [0:*]
set format x "%g"
set xlabel "week of operation"
set ylabel "alerts raised / labels per week"
set style fill solid 0.6 border -1
set boxwidth 0.6
plot "$in" using 1:4 with boxes lc rgb "#ff7f0e" title "labels (answered)", \
     "$in" using 1:6 with linespoints lw 2 pt 7 lc rgb "#d62728" title "raised: flywheel", \
     "$in" using 1:9 with linespoints lw 1.5 pt 5 dt 2 lc rgb "#7f7f7f" title "raised: no feedback"
unset multiplot
EOF
echo "plot-flywheel: wrote $out"
