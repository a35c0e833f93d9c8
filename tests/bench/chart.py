#!/usr/bin/env python3
"""Writes the peer comparison as an SVG bar chart (stdlib only).

    chart.py OUT.svg [TITLE] < rows

Each input line: LABEL <TAB> MS_1_SERVICE <TAB> MS_10_SERVICES.  One panel
per scenario, one horizontal bar per runner, on a shared log scale (the
figures span three orders of magnitude), each bar labelled with its value
and its ratio to the first row (envrun)."""
import math
import sys
from xml.sax.saxutils import escape

COLORS = ["#2b7bba", "#9aa5b1", "#e07b39", "#4daf4a", "#984ea3", "#d62728"]


def main():
    out = sys.argv[1]
    title = sys.argv[2] if len(sys.argv) > 2 else "whole cycle, p50"
    rows = []
    for line in sys.stdin:
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 3:
            rows.append((parts[0], float(parts[1]), float(parts[2])))
    if not rows:
        sys.exit("chart.py: no rows on stdin")
    values = [v for r in rows for v in r[1:] if v > 0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    left, width, bar, gap = 190, 520, 18, 6
    panel_h = len(rows) * (bar + gap) + 55
    height = 60 + 2 * panel_h + 30
    total_w = left + width + 150

    def x(v):
        return left + width * (math.log10(max(v, lo)) - math.log10(lo)) / (
            math.log10(hi) - math.log10(lo))

    s = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="12">' % (total_w, height),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="22" font-size="15" font-weight="bold">%s</text>'
         % escape("envrun vs the tools users would pick instead"),
         '<text x="10" y="40" fill="#555">%s</text>' % escape(title)]
    for p, (name, col) in enumerate((("1 service", 1), ("10 services", 2))):
        top = 60 + p * panel_h
        s.append('<text x="10" y="%d" font-weight="bold">%s</text>' % (top + 12, name))
        y0 = top + 20
        bottom = y0 + len(rows) * (bar + gap)
        d = lo
        while d <= hi:
            s.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                     % (x(d), y0 - 4, x(d), bottom))
            s.append('<text x="%.1f" y="%d" fill="#777" font-size="10" text-anchor="middle">'
                     '%s ms</text>' % (x(d), bottom + 11, "{:g}".format(d)))
            d *= 10
        base = rows[0][col]
        for i, r in enumerate(rows):
            v = r[col]
            y = y0 + i * (bar + gap)
            s.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                     % (left - 8, y + bar - 5, escape(r[0])))
            s.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>'
                     % (left, y, max(x(v) - left, 1), bar, COLORS[i % len(COLORS)]))
            note = "%.1f ms" % v
            if i and base > 0:
                note += "  (%.1fx)" % (v / base)
            s.append('<text x="%.1f" y="%d">%s</text>' % (x(v) + 5, y + bar - 5, note))
    s.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(s) + "\n")


if __name__ == "__main__":
    main()
