#!/bin/sh
# plot-memcpy.sh: draws bench-memcpy's CSV as a PNG (MB/s against copy size,
# log-log, one line per variant) with gnuplot.
#
#   benchmarks/plot-memcpy.sh [CSV=memcpy.csv] [PNG=docs/memcpy.png] [TITLE]
#
# The CSV comes from `bench-memcpy --csv FILE` (columns size, variant,
# best_ns, median_ns, best_mbps, median_mbps); the plot uses best_mbps.
# Needs gnuplot (Debian: apt-get install --no-install-recommends gnuplot-nox).
set -eu

csv=${1:-memcpy.csv}
png=${2:-docs/memcpy.png}
title=${3:-walloc_memcpy vs glibc memcpy (best of N rounds)}

command -v gnuplot >/dev/null 2>&1 || {
  echo "plot-memcpy.sh: gnuplot not found (apt-get install --no-install-recommends gnuplot-nox)" >&2
  exit 1
}
[ -r "$csv" ] || { echo "plot-memcpy.sh: cannot read $csv" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per variant, in the order they first appear; the byte loop last.
variants=$(awk -F, 'NR > 1 && !seen[$2]++ { print $2 }' "$csv" | grep -v '^byte loop$' || true)
variants="$variants
byte loop"
i=0
plot=""
echo "$variants" | while IFS= read -r v; do
  [ -n "$v" ] || continue
  i=$((i + 1))
  awk -F, -v v="$v" 'NR > 1 && $2 == v { print $1, $5 }' "$csv" | sort -n > "$tmp/$i.dat"
  [ -s "$tmp/$i.dat" ] || continue
  case "$v" in
    glibc) style="lw 3 lc rgb '#000000' dt 1 pt 7" ;;
    walloc) style="lw 3 lc rgb '#d62728' dt 1 pt 5" ;;
    walloc-avx2) style="lw 1.5 lc rgb '#ff7f0e' dt 2 pt 9" ;;
    walloc-sse2) style="lw 1.5 lc rgb '#1f77b4' dt 2 pt 11" ;;
    walloc-portable) style="lw 1.5 lc rgb '#2ca02c' dt 2 pt 13" ;;
    walloc-avx512) style="lw 1.5 lc rgb '#9467bd' dt 2 pt 4" ;;
    walloc-avx512-rep) style="lw 1.5 lc rgb '#8c564b' dt 4 pt 6" ;;
    *) style="lw 1.5 lc rgb '#7f7f7f' dt 3 pt 3" ;;
  esac
  printf "'%s' using 1:2 with linespoints title '%s' %s, \\\\\n" "$tmp/$i.dat" "$v" "$style" >> "$tmp/plot"
done
sed -i '$ s/, \\$//' "$tmp/plot"

# x tics at the sizes that were measured (a label only where it has room)
xtics=$(awk -F, 'NR > 1 && !seen[$1]++ { print $1 }' "$csv" | sort -n | awk '
  { s = $1; l = s >= 1048576 ? s / 1048576 " MiB" : s >= 1024 ? s / 1024 " KiB" : s;
    if (last && s < last * 1.3) l = ""; else last = s;
    printf "%s\"%s\" %s", (n++ ? ", " : ""), l, s }')
xmax=$(awk -F, 'NR > 1 && $1 > m { m = $1 } END { print m * 2 }' "$csv")
ymax=$(awk -F, 'NR > 1 && $5 > m { m = $5 } END { print m * 1.6 }' "$csv")

cat > "$tmp/plot.gp" <<EOF
set terminal pngcairo noenhanced size 1200,720 font "DejaVu Sans,11"
set output "$png"
set title "$title"
set xlabel "copy size (bytes; up to 64 KiB warm buffers, 1 MiB and 64 MiB cold)"
set ylabel "MB/s (10^6 bytes/s, log scale)"
set logscale x 2
set logscale y 10
set yrange [1000:$ymax]
set xrange [4:$xmax]
set xtics ($xtics) rotate by -45
set grid xtics ytics mytics
set key top left box opaque
set format y "%g"
plot \\
EOF
cat "$tmp/plot" >> "$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "wrote $png"
