"""test_report_html.py — `relasi report html FILE`, the manager's page.

The dataset is test_reports.py's: a real hub on 127.0.0.1, three reps in two
teams whose devices add, move, win and lose deals and log activities (each a
real `relasi` process at its own moment), a manager's device that syncs.
The manager writes the page (check_generated_page, run by
test_hub_reports.py, which loads the dataset once for the three files);
then:

- its figures: every chart's bars (data-* attributes) and every figure
  table are parsed with html.parser and must equal `relasi --json report
  pipeline|forecast|winrate|activity` with the same filters, value for value;
  the RFM grid's cells must equal `relasi --json segment rfm --accounts`
  grouped by currency, R and FM = (F + M + 1) // 2 (and, summed per segment,
  `relasi --json segment rfm`, whose rows and totals are the section's
  tables); the tier bars and table must equal `relasi --json tiers --month
  M` for each month drawn (the six ending with --to's month or today's, or
  from --from's month); the tiers are configured so that every level and
  "no tier" have customers;
- it references nothing outside itself (no src/href to anywhere, no
  @import, no url(), no script, no link, no image);
- Debian's Chromium renders it headless (no sandbox, no GPU, every host
  name unresolvable): screenshots at a laptop's width and a phone's are
  PNGs of the right size that are not blank (read with zlib here); the DOM
  it dumps holds the charts; its log shows no console message, and the
  detector is shown to catch a page that does throw;
- laid out at 1280 and at 390 CSS pixels (a phone; headless Chromium's
  window cannot be narrower than 500, so the phone is a 390-pixel frame),
  nothing overflows the width, the grid has two columns then one, and chart
  text stays readable;
- names are text: a stage `<script>alert(1)</script>`, a rep named
  `<img src=x onerror=alert(1)>`, a customer and region that try to close an
  attribute, all render as text and never as elements;
- money per currency as the CLI prints it (JPY 0 decimals, KWD 3);
- the file is written whole or not at all, 0600, and bad arguments are
  usage errors that write nothing and change nothing.

Chromium comes from scripts/setup.sh (Debian package `chromium`); without it
the test says so and exits 77 (ctest: skipped).
"""
import collections
import html
import html.parser
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relasi_test import Failure, Store, check, eq, main  # noqa: E402
import test_reports as tr  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROME_TIMEOUT = 45
REPORTS = ("pipeline", "forecast", "winrate", "activity")


# ---- reading the page -------------------------------------------------------------

class Page(html.parser.HTMLParser):
    """What the tests look at: bars (elements with data-series) with the text
    of their labels, the figure tables, every tag and attribute."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.bars, self.tables, self.tags, self.attrs = [], [], [], []
        self.svgs, self.missing, self.filters = [], [], {}
        self._bar = self._table = self._row = self._cell = None
        self._svg = None
        self._in_text = self._in_title = self._in_missing = False
        self._filter = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag == "svg":
            self._svg = a
            self.svgs.append(a)
        elif "data-series" in a:
            self._bar = dict(a, report=self._svg.get("data-report") if self._svg else None,
                             label="")
            self.bars.append(self._bar)
        elif tag == "text":
            self._in_text = True
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self._table = {"report": a.get("data-report"), "part": a.get("data-part"),
                           "keys": [], "rows": []}
            self.tables.append(self._table)
        elif tag == "th" and self._table is not None:
            self._table["keys"].append(a.get("data-key"))
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = dict(a, text="")
            self._row.append(self._cell)
        elif tag == "p" and "data-missing" in a:
            self._in_missing = True
            self.missing.append("")
        elif tag == "b" and "data-filter" in a:
            self._filter = a["data-filter"]
            self.filters[self._filter] = ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None
        elif tag == "g":
            self._bar = None
        elif tag == "text":
            self._in_text = False
        elif tag == "title":
            self._in_title = False
        elif tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "p":
            self._in_missing = False
        elif tag == "b":
            self._filter = None

    def handle_data(self, data):
        if self._bar is not None and self._in_text and not self._in_title:
            self._bar["label"] += data
        if self._cell is not None:
            self._cell["text"] += data
        if self._in_missing:
            self.missing[-1] += data
        if self._filter:
            self.filters[self._filter] += data


def read_page(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text, Page(text)


def check_self_contained(text, page):
    low = text.lower()
    # text from the store is escaped, so a "<" in the file starts a real tag
    for bad in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "<base"):
        check(bad not in low, f"the page holds no {bad!r}", bad)
    # the CSS loads nothing: no @import, no url() (fonts, images), no address
    styles = re.findall(r"<style>(.*?)</style>", text, re.S) + [v for k, v in page.attrs
                                                               if k == "style"]
    check(styles, "the page has its CSS inline")
    for css in styles:
        for bad in ("@import", "url(", "http:", "https:", "//"):
            check(bad not in css.lower(), f"the CSS holds no {bad!r}", css[:200])
    for tag in ("script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignobject"):
        check(tag not in page.tags, f"no <{tag}> element")
    for k, v in page.attrs:
        check(not k.startswith("on"), f"no event handler attribute ({k})")
        if k in ("href", "xlink:href", "src", "action", "poster", "srcset"):
            check(v.startswith("#"), f"{k}= points inside the page only", v)


def cell_value(cell, want):
    """A figure-table cell as the JSON value it stands for."""
    if "data-null" in cell:
        return None
    v = cell["data-value"]
    if isinstance(want, str) or want is None:
        return v
    if isinstance(want, int):
        return int(v)
    return float(v)


def money_text(minor, cur):
    """What `relasi` prints for an amount (rl_money_format): major units."""
    exp = {"IDR": 2, "USD": 2, "JPY": 0, "KWD": 3}[cur]
    sign, m = ("-" if minor < 0 else ""), abs(minor)
    return sign + (str(m) if exp == 0 else f"{m // 10 ** exp}.{m % 10 ** exp:0{exp}d}")


def check_tables(page, name, j):
    """The section's figure tables are the report's rows and totals."""
    for part in ("rows", "totals"):
        tabs = [t for t in page.tables if t["report"] == name and t["part"] == part]
        if part == "totals" and "totals" not in j:
            eq(tabs, [], f"{name}: no totals table")
            continue
        eq(len(tabs), 1, f"{name}: one {part} table")
        t, want = tabs[0], j[part]
        if want:
            eq(t["keys"], list(want[0].keys()), f"{name} {part}: columns = JSON keys, in order")
        eq(len(t["rows"]), len(want), f"{name} {part}: as many rows as the JSON")
        for i, (row, w) in enumerate(zip(t["rows"], want)):
            got = {c["data-key"]: cell_value(c, w[c["data-key"]]) for c in row}
            eq(got, w, f"{name} {part} row {i}")
            for c in row:
                k = c["data-key"]
                if k in ("amount", "weighted", "open_amount", "won", "expected", "best_case") \
                        and w[k] is not None and isinstance(w[k], int) and w.get("currency"):
                    eq(c["text"], money_text(w[k], w["currency"]),
                       f"{name} {part} {k}: shown as the CLI shows money")


def bars(page, report, series=None):
    return [b for b in page.bars if b["report"] == report
            and (series is None or b["data-series"] == series)]


def check_charts(page, js):
    """Every bar's figure is the JSON's; every JSON row has its bars."""
    # funnel: per currency, every stage, three bars; a stage with no row in
    # that currency is drawn empty
    rows = js["pipeline"]["rows"]
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    curs = sorted(set(r["currency"] for r in rows if r["currency"]))
    eq(len(bars(page, "pipeline")), 3 * len(stages) * len(curs), "funnel: 3 bars per stage and currency")
    for b in bars(page, "pipeline"):
        w = [r for r in rows if r["stage"] == b["data-stage"] and r["currency"] == b["data-currency"]]
        want = w[0][b["data-series"]] if w else 0
        eq(int(b["data-value"]), want, f"funnel {b['data-stage']} {b['data-currency']} {b['data-series']}")
        if b["data-series"] != "deals":
            eq(b["label"], money_text(want, b["data-currency"]), "funnel bar label: CLI money")
        else:
            eq(b["label"], str(want), "funnel deal count label")
    for r in rows:
        if r["currency"]:
            eq(sum(1 for b in bars(page, "pipeline") if b["data-stage"] == r["stage"]
                   and b["data-currency"] == r["currency"]), 3, f"funnel bars of {r['stage']}")
    # forecast: won, weighted, best case per month and currency
    rows = js["forecast"]["rows"]
    eq(len(bars(page, "forecast")), 3 * len(rows), "forecast: 3 bars per row")
    for r in rows:
        for series in ("won", "weighted", "best_case"):
            b = [b for b in bars(page, "forecast", series) if b.get("data-month") == r["month"]
                 and b["data-currency"] == r["currency"]]
            eq(len(b), 1, f"forecast {r['month']} {r['currency']} {series}: one bar")
            eq(int(b[0]["data-value"]), r[series], f"forecast {r['month']} {r['currency']} {series}")
            eq(b[0]["label"], money_text(r[series], r["currency"]), "forecast label: CLI money")
    # win rate per rep, and the rate of all as a line
    rows = js["winrate"]["rows"]
    eq(len(bars(page, "winrate", "win_rate")), len(rows), "win rate: one bar per rep")
    for r in rows:
        b = [b for b in bars(page, "winrate", "win_rate") if b.get("data-rep-id") == r["rep_id"]]
        eq(len(b), 1, f"win rate bar of {r['rep']}")
        eq((b[0]["data-rep"], float(b[0]["data-value"]), int(b[0]["data-won"]), int(b[0]["data-lost"])),
           (r["rep"], r["win_rate"], r["won"], r["lost"]), f"win rate of {r['rep']}")
    tot = js["winrate"]["totals"][0]["win_rate"]
    allb = bars(page, "winrate", "win_rate_all")
    eq([float(b["data-value"]) for b in allb], [tot] if tot is not None else [], "win rate of all")
    # activity: a cell per rep and week
    rows = js["activity"]["rows"]
    cells = bars(page, "activity", "total")
    eq(len(cells), len(rows), "activity: one cell per row")
    for r in rows:
        c = [c for c in cells if c["data-week"] == r["week"] and c.get("data-rep-id") == r["rep_id"]]
        eq(len(c), 1, f"activity cell {r['week']} {r['rep']}")
        got = {k: int(c[0]["data-" + k]) for k in ("visits", "calls", "meetings", "emails")}
        got["total"] = int(c[0]["data-value"])
        eq(got, {k: r[k] for k in ("visits", "calls", "meetings", "emails", "total")},
           f"activity {r['week']} {r['rep']}")
        eq(c[0]["label"], str(r["total"]), "activity cell shows its total")


def opt(args, name):
    return args[args.index(name) + 1] if name in args else None


def month_add(month, delta):
    y, m = int(month[:4]), int(month[5:7])
    t = y * 12 + m - 1 + delta
    return f"{t // 12:04d}-{t % 12 + 1:02d}"


def check_rfm(text, page, store, args, now):
    """The RFM section: `segment rfm` with the page's --from/--to (its
    default window without them), whatever the other filters."""
    rargs = [x for k in ("--from", "--to") if opt(args, k) for x in (k, opt(args, k))]
    j = store.js("segment", "rfm", *rargs, now=now)
    acc = store.js("segment", "rfm", "--accounts", *rargs, now=now)
    window = dict(re.findall(r'<time data-rfm="(from|to)">([^<]*)</time>', text))
    eq(window, j["filters"], "the page states the RFM window the command used")
    check_tables(page, "rfm", j)
    cells = collections.defaultdict(lambda: [0, 0, set()])
    for a in acc["rows"]:
        c = cells[(a["currency"], a["r"], (a["f"] + a["m"] + 1) // 2)]
        c[0] += 1
        c[1] += a["monetary"]
        c[2].add(a["segment"])
    curs = sorted({a["currency"] for a in acc["rows"]})
    got = bars(page, "rfm", "rfm_cell")
    eq(len(got), 25 * len(curs), "RFM: a 5 x 5 grid per currency")
    seg = collections.defaultdict(lambda: [0, 0])
    for b in got:
        key = (b["data-currency"], int(b["data-r"]), int(b["data-fm"]))
        want = cells.get(key, [0, 0, set()])
        eq((int(b["data-value"]), int(b["data-revenue"])), tuple(want[:2]), f"RFM cell {key}")
        check(want[2] <= {b["data-segment"]}, f"RFM cell {key} is named by its accounts' segment",
              want[2], b["data-segment"])
        # the label's texts run together: the name (over two lines), the count
        check(b["label"].startswith(b["data-segment"].replace(" ", "")),
              f"RFM cell {key} shows its segment's name", b["label"])
        check(str(want[0]) in b["label"], f"RFM cell {key} shows its count", b["label"])
        s = seg[(b["data-currency"], b["data-segment"])]
        s[0] += int(b["data-value"])
        s[1] += int(b["data-revenue"])
    for r in j["rows"]:
        eq(tuple(seg[(r["currency"], r["segment"])]), (r["accounts"], r["revenue"]),
           f"RFM cells of {r['segment']} {r['currency']} add up to the segment's row")
    return j


def check_tiers(page, store, args, now):
    """The tiers section: `tiers --month M` for each month drawn."""
    last = (opt(args, "--to") or now)[:7]
    first = opt(args, "--from")[:7] if opt(args, "--from") else month_add(last, -5)
    months, m = [], first
    while m <= last:
        months.append(m)
        m = month_add(m, 1)
    tabs = [t for t in page.tables if t["report"] == "tiers" and t["part"] == "rows"]
    eq(len(tabs), 1, "tiers: one rows table")
    eq([t for t in page.tables if t["report"] == "tiers" and t["part"] == "totals"], [],
       "tiers: no totals")
    rows = [{c["data-key"]: c for c in r} for r in tabs[0]["rows"]]
    out = {}
    for m in months:
        j = store.js("tiers", "--month", m, now=now)
        out[m] = j
        mine = [r for r in rows if r["month"]["data-value"] == m]
        eq(len(mine), len(j["rows"]), f"tiers {m}: as many rows as `tiers --month {m}`")
        for r, w in zip(mine, j["rows"]):
            eq({k: cell_value(c, w.get(k, m)) for k, c in r.items()}, dict(w, month=m),
               f"tiers {m} row {w['tier']}")
        tiered = [w for w in j["rows"] if w["tier"] is not None]
        b = [b for b in bars(page, "tiers", "tier") if b["data-month"] == m]
        eq([(x["data-tier"], int(x["data-value"])) for x in b],
           [(w["tier"], w["accounts"]) for w in tiered], f"tier bars of {m}, highest first")
        none = [w["accounts"] for w in j["rows"] if w["tier"] is None] or [0]
        b = [b for b in bars(page, "tiers", "no_tier") if b["data-month"] == m]
        eq([int(x["data-value"]) for x in b], none, f"no-tier count of {m}")
        eq(b[0]["label"], f"{none[0]} none", "the no-tier count is shown")
    eq(sorted({r["month"]["data-value"] for r in rows}), months, "the months drawn")
    return out


def check_page(store, path, args, now):
    """The page at path against the JSON reports run with the same args."""
    text, page = read_page(path)
    check_self_contained(text, page)
    js = {n: store.js("report", n, *args, now=now) for n in REPORTS}
    for n in REPORTS:
        check_tables(page, n, js[n])
    check_charts(page, js)
    eq(page.missing, [], "no section is a placeholder")
    js["rfm"] = check_rfm(text, page, store, args, now)
    js["tiers"] = check_tiers(page, store, args, now)
    return text, page, js


# ---- Chromium ---------------------------------------------------------------------

def chrome(workdir, *args):
    """Run headless Chromium, bounded; returns (stdout, stderr)."""
    profile = tempfile.mkdtemp(prefix="chrome-", dir=workdir)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={profile}", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--disable-component-update",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0"] + list(args)
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROME_TIMEOUT,
                       env=dict(os.environ, HOME=workdir))
    print(f"     chromium {args[-1][-30:]}: {time.time() - t:.1f} s")
    if p.returncode != 0:
        raise Failure(f"chromium {' '.join(args)}: exit {p.returncode}\n{p.stderr[-2000:]}")
    return p.stdout, p.stderr


def console_lines(stderr):
    """Console messages and script errors in Chromium's log."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def png(path):
    """(width, height, rows): every 4th row decoded (zlib, PNG filters), as
    lists of RGB(A) pixels."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file", path)
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    check(depth == 8 and ctype in (2, 6) and interlace == 0, "an 8-bit RGB(A) PNG", hdr)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev, rows = bytearray(stride), []
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ft == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ft == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ft == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        if y % 4 == 0:
            rows.append([bytes(line[i:i + bpp]) for i in range(0, stride, bpp)])
    return w, h, rows


def check_not_blank(path, width, height, what, left=None):
    w, h, rows = png(path)
    eq((w, h), (width, height), f"{what}: screenshot size")
    px = collections.Counter(p for r in rows for p in (r[:left] if left else r))
    colours = set(px)
    ink = 1 - px.most_common(1)[0][1] / sum(px.values())   # not the background
    check(len(colours) > 40, f"{what}: many colours (charts drawn), not a blank page", len(colours))
    check(ink > 0.2, f"{what}: a fifth of the page is more than background", ink)
    # the charts' colours are there: the won green and the weighted blue
    check(any(p[:3] == b"\x15\x80\x3d" for p in colours), f"{what}: the won bars' green")
    check(any(p[:3] == b"\x25\x63\xeb" for p in colours), f"{what}: the weighted bars' blue")


# The phone: headless Chromium's window is never narrower than 500 CSS
# pixels, so the page is laid out in a 390-pixel frame at the window's left
# edge (the screenshot) and, below the fold, in a 1280-pixel frame; a script
# of this harness page (the report has none) measures both layouts.
HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0;background:#888">
<iframe id="phone" style="display:block;border:0;width:390px;height:2400px" srcdoc="{doc}"></iframe>
<iframe id="laptop" style="display:block;border:0;width:1280px;height:3000px" srcdoc="{doc}"></iframe>
<script>
function measure(f) {{
  var d = f.contentDocument, w = f.contentWindow, m = {{}}, min = 1e9, right = 0;
  m.client = d.documentElement.clientWidth;
  m.scroll = d.documentElement.scrollWidth;
  m.columns = w.getComputedStyle(d.querySelector('main')).gridTemplateColumns.split(' ').length;
  d.querySelectorAll('svg.chart').forEach(function (s) {{
    var r = s.getBoundingClientRect(), k = r.width / s.viewBox.baseVal.width;
    right = Math.max(right, r.right);
    s.querySelectorAll('text').forEach(function (t) {{
      min = Math.min(min, parseFloat(w.getComputedStyle(t).fontSize) * k);
    }});
  }});
  m.charts = d.querySelectorAll('svg.chart').length;
  m.chart_right = right;
  m.min_text_px = min;
  return m;
}}
window.addEventListener('load', function () {{
  document.body.setAttribute('data-measure', JSON.stringify({{
    phone: measure(document.getElementById('phone')),
    laptop: measure(document.getElementById('laptop'))}}));
}});
</script></body></html>"""


def check_render(workdir, path, page_text, shots=None):
    # the page itself: the DOM Chromium built holds the charts, its log no
    # console message; and a laptop-sized screenshot
    laptop = os.path.join(workdir, "laptop.png")
    out, err = chrome(workdir, "--window-size=1280,1500", f"--screenshot={laptop}", "--dump-dom",
                      "file://" + path)
    eq(console_lines(err), [], "no script error or console message while rendering")
    check(out.count('<svg class="chart"') >= 6 and "data-series" in out and "Funnel by stage" in out
          and 'data-series="rfm_cell"' in out and 'data-series="tier"' in out,
          "the dumped DOM holds the charts (the page rendered)", out[:300])
    check_not_blank(laptop, 1280, 1500, "laptop")
    # the phone's screenshot and both layouts, measured
    harness = os.path.join(workdir, "harness.html")
    with open(harness, "w", encoding="utf-8") as f:
        f.write(HARNESS.format(doc=html.escape(page_text, quote=True)))
    phone = os.path.join(workdir, "phone.png")
    out, err = chrome(workdir, "--window-size=500,2400", f"--screenshot={phone}", "--dump-dom",
                      "file://" + harness)
    eq(console_lines(err), [], "the measuring page ran without console messages")
    check_not_blank(phone, 500, 2400, "phone (390 px frame)", left=390)
    if shots:
        shutil.copy(laptop, shots + "-laptop.png")
        shutil.copy(phone, shots + "-phone.png")
    m = re.search(r'data-measure="([^"]*)"', out)
    check(m, "the layouts were measured", out[-500:])
    m = json.loads(html.unescape(m.group(1)))
    lap, ph = m["laptop"], m["phone"]
    eq((lap["client"], lap["columns"], ph["client"], ph["columns"]), (1280, 2, 390, 1),
       f"two columns on a laptop, one on a phone {m}")
    for what, x in (("laptop", lap), ("phone", ph)):
        check(x["charts"] >= 6 and x["scroll"] <= x["client"] and x["chart_right"] <= x["client"],
              f"{what}: every chart fits, nothing overflows the width", x)
    check(lap["min_text_px"] >= 10, "laptop: chart text at least 10 px", lap)
    check(ph["min_text_px"] >= 9, "phone: chart text at least 9 px", ph)


# ---- the tests ----------------------------------------------------------------------

def test_detector_catches_script_errors():
    """The console check can fail: a page that logs and throws is caught."""
    work = tempfile.mkdtemp(prefix="relasi-html-")
    try:
        bad = os.path.join(work, "bad.html")
        with open(bad, "w") as f:
            f.write("<!DOCTYPE html><p>x</p><script>console.error('boom'); nope();</script>")
        _, err = chrome(work, "--dump-dom", "file://" + bad)
        lines = console_lines(err)
        check(any("Uncaught" in ln for ln in lines) and any("boom" in ln for ln in lines),
              "a thrown error and a console.error are seen", err[-1500:])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_generated_page(mgr, work):
    """The manager's page over test_reports.py's generated dataset (loaded
    once, by test_hub_reports.py, which also compares the hub's page)."""
    # levels the dataset's customers spread over (IDR a month; spend 0
    # is no tier), so every level and "no tier" are drawn
    mgr.ok("tiers", "config", "Priority=800000", "Gold=200000", "Red=1", now=tr.NOW)
    path = os.path.join(work, "report.html")
    before = mgr.file_hash()
    j = mgr.js("report", "html", path, now=tr.NOW)
    eq((j["report"], j["as_of"], j["file"], j["filters"]),
       ("html", tr.NOW, path, {}), "--json says what was written")
    eq(j["bytes"], os.path.getsize(path), "--json gives the file's size")
    eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "the page is the user's only (0600)")
    eq(sorted(os.listdir(work)), ["report.html"], "no temporary file left")
    text, page, js = check_page(mgr, path, [], tr.NOW)
    check(len(js["activity"]["rows"]) > 20 and len(js["winrate"]["rows"]) == 3 and
          len({r["currency"] for r in js["forecast"]["rows"]}) == 2,
          "the dataset fills every chart (3 reps, weeks, two currencies)")
    tiers = {(w["tier"]) for j in js["tiers"].values() for w in j["rows"] if w["accounts"]}
    eq(tiers, {"Priority", "Gold", "Red", None}, "every tier and 'no tier' have customers")
    check(sum(r["accounts"] for r in js["rfm"]["rows"]) > 8 and
          len({r["segment"] for r in js["rfm"]["rows"] if r["accounts"]}) >= 4,
          "the RFM grid has customers in several segments", js["rfm"]["rows"])
    if CHROMIUM:
        check_render(work, path, text, shots=os.environ.get("RELASI_HTML_SHOTS"))
    else:
        print("note: chromium is not installed: the generated page is not rendered")
    # the same filters as the reports: the charts follow them
    args = ["--team", "barat", "--from", "2026-02-01", "--to", "2026-03-31"]
    out = mgr.ok("report", "html", path, *args, now=tr.NOW).out
    check(out.startswith(f"wrote {path} ("), "the terminal says where it wrote", out)
    text, page, js = check_page(mgr, path, args, tr.NOW)
    eq(page.filters, {"team": "barat", "from": "2026-02-01", "to": "2026-03-31"},
       "the page says which filters applied")
    check({r["rep"] for r in js["winrate"]["rows"]} <= {"Ani Lestari", "Budi Santoso"},
          "team Barat only", js["winrate"]["rows"])
    eq(mgr.file_hash(), before, "writing the page changes nothing in the store")


SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
REGION = '"><script>alert(2)</script>'
NOW = "2026-04-20T09:00:00Z"


def test_names_are_text_and_money_per_currency():
    s = Store(name=IMG)
    work = tempfile.mkdtemp(prefix="relasi-html-")
    try:
        t0 = "2026-04-01T08:00:00Z"
        s.ok("stage", "add", SCRIPT, "--position", "2", "--probability", "30", now=t0)
        s.ok("account", "add", SCRIPT, "--region", REGION, now=t0)
        s.ok("account", "add", "Toko Biasa", "--region", "Bali", now=t0)
        s.ok("deal", "add", "Yen", "--account", SCRIPT, "--amount", "1500", "--currency", "JPY",
             "--close", "2026-05-10", now=t0)
        s.ok("deal", "move", "Yen", SCRIPT, now="2026-04-02T08:00:00Z")
        s.ok("deal", "add", "Dinar", "--account", SCRIPT, "--amount", "1.5", "--currency", "KWD",
             "--close", "2026-05-20", now=t0)
        s.ok("deal", "won", "Dinar", now="2026-04-03T08:00:00Z")
        s.ok("deal", "add", "Rupiah", "--account", "Toko Biasa", "--amount", "2500000.50",
             now=t0)
        s.ok("deal", "lost", "Rupiah", "--reason", "harga", now="2026-04-04T08:00:00Z")
        s.ok("visit", "log", SCRIPT, "--at", "2026-04-06T10:00Z", now="2026-04-06T10:00:00Z")
        path = os.path.join(work, "r.html")
        before = s.file_hash()
        s.ok("report", "html", path, now=NOW)
        text, page, js = check_page(s, path, [], NOW)
        # the names are there, as text
        check(any(b["data-series"] == "deals" and b["data-stage"] == SCRIPT for b in page.bars),
              "the stage's bars carry its name", [b for b in page.bars][:3])
        check(SCRIPT in {c["text"] for t in page.tables for r in t["rows"] for c in r},
              "the stage name is a table cell's text")
        eq([b["data-rep"] for b in bars(page, "winrate", "win_rate")], [IMG], "the rep's name")
        check(html.escape(SCRIPT, quote=True) in text and html.escape(IMG, quote=True) in text,
              "the names are written escaped")
        # money per currency as the CLI prints it
        amounts = {b["data-currency"]: b["label"] for b in bars(page, "pipeline", "amount")
                   if int(b["data-value"])}
        eq(amounts, {"JPY": "1500", "KWD": "1.500", "IDR": "2500000.50"}, "money per currency")
        cli = s.ok("report", "pipeline", now=NOW).out
        for label in amounts.values():
            check(label in cli, "the CLI prints the same amount", label, cli)
        # the region filter is echoed as text
        s.ok("report", "html", path, "--region", REGION, now=NOW)
        text, page, js = check_page(s, path, ["--region", REGION], NOW)
        eq(page.filters, {"region": REGION}, "the filter is shown as given")
        eq([r["currency"] for r in js["pipeline"]["totals"]], ["JPY"], "the region's open deal")
        # and Chromium builds no element from them
        out, err = chrome(work, "--window-size=800,1200", "--dump-dom", "file://" + path)
        eq(console_lines(err), [], "no script ran, no error")
        check("<script" not in out.lower() and "<img" not in out.lower(),
              "the DOM holds no script or image element", out[:400])
        check(html.escape(REGION, quote=False) in out, "the filter is a text node in the DOM")
        eq(s.file_hash(), before, "the store is unchanged")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        s.cleanup()


def test_written_whole_or_not_at_all():
    s = Store(name="Dewi")
    work = tempfile.mkdtemp(prefix="relasi-html-")
    try:
        path = os.path.join(work, "r.html")
        with open(path, "w") as f:
            f.write("old")
        s.ok("report", "html", path)
        with open(path) as f:
            text = f.read()
        check(text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n"),
              "an existing file is replaced by a whole page")
        _, page = read_page(path)
        check("Nothing to show for this selection." in text and len(page.tables) == 11,
              "an empty store gives a page that says so, with its (empty) tables")
        # a FILE that is a directory: the page cannot take its name; nothing left
        d = os.path.join(work, "dir")
        os.mkdir(d)
        s.fails(7, "report", "html", d, contains="Is a directory")
        eq(sorted(os.listdir(work)), ["dir", "r.html"], "no temporary file left after a failure")
        s.fails(7, "report", "html", os.path.join(work, "nope", "r.html"), contains="nope")
        before = s.file_hash()
        for args, what in [(["report", "html"], "FILE"),
                           (["report", "html", ""], "FILE"),
                           (["report", "html", os.path.join(work, "x.html"), "--from", "2026-02-30"],
                            "2026-02-30"),
                           (["report", "html", os.path.join(work, "x.html"), "--csv"], "--csv"),
                           # after today with no --to: the RFM and tier sections
                           # have no window (it failed half-way, exit 5)
                           (["report", "html", os.path.join(work, "x.html"), "--from",
                             "2099-01-01"], "--from 2099-01-01"),
                           (["report", "html", os.path.join(work, "x.html"), "--by", "line"], "--by"),
                           (["report", "html", os.path.join(work, "x.html"), "extra"], "extra")]:
            s.fails(2, *args, contains=what)
        s.fails(3, "report", "html", os.path.join(work, "x.html"), "--rep", "Nobody")
        eq(sorted(os.listdir(work)), ["dir", "r.html"], "a refused report writes nothing")
        eq(s.file_hash(), before, "and changes nothing")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        s.cleanup()


if __name__ == "__main__":
    if not CHROMIUM:
        print("SKIP: chromium is not installed (Debian package 'chromium': run scripts/setup.sh)")
        sys.exit(77)
    main([test_detector_catches_script_errors, test_written_whole_or_not_at_all,
          test_names_are_text_and_money_per_currency])
