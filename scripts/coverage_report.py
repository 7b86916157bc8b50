#!/usr/bin/env python3
"""coverage_report.py — line coverage of the product's C code after a test run.

Reads every .gcda file under BUILD (a build configured with
-DRELASI_COVERAGE=ON, after ctest ran in it) through gcc's own `gcov
--json-format`, keeps the product's sources (client/, hub/, sync/; not
tests/, fuzz/ or the generated schema arrays), adds the counts of a source
compiled into several objects, and prints per file: lines with code, lines
run, the percentage, and the lines never run. With --out DIR it also writes
DIR/FILE.txt per source: the ranges of lines never run, each with the
function it is in, to read beside the source. Exit 2 when BUILD holds no
counts (the suite was not run in it).

usage: coverage_report.py BUILD [--out DIR] [--min PCT]
  --min PCT  exit 1 when the whole product is below PCT percent
"""
import argparse
import gzip
import json
import os
import subprocess
import sys

PRODUCT = ("client/", "hub/", "sync/")


def gcda_files(build):
    for root, _, files in os.walk(build):
        for f in files:
            if f.endswith(".gcda"):
                yield os.path.join(root, f)


def read_counts(build, source_root):
    """{relative source path: {line: [count, function]}}, counts summed."""
    out = {}
    for gcda in sorted(gcda_files(build)):
        r = subprocess.run(["gcov", "--json-format", "--stdout", "--object-directory",
                            os.path.dirname(gcda), gcda],
                           cwd=build, capture_output=True)
        if r.returncode != 0 or not r.stdout:
            print(f"coverage_report: gcov could not read {gcda}: "
                  f"{r.stderr.decode(errors='replace').strip()}", file=sys.stderr)
            continue
        data = r.stdout
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        # gcov prints one JSON document per data file given
        for doc in data.decode().splitlines():
            if not doc.strip():
                continue
            for f in json.loads(doc)["files"]:
                path = os.path.realpath(os.path.join(build, f["file"]))
                rel = os.path.relpath(path, source_root)
                if not rel.startswith(PRODUCT):
                    continue
                lines = out.setdefault(rel, {})
                for ln in f["lines"]:
                    cur = lines.setdefault(ln["line_number"], [0, ln.get("function_name", "")])
                    cur[0] += ln["count"]
    return out


def ranges(numbers):
    """Sorted line numbers as [(first, last), ...] runs."""
    runs = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--out")
    ap.add_argument("--min", type=float)
    args = ap.parse_args()
    source_root = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
    counts = read_counts(os.path.realpath(args.build), source_root)
    if not counts:
        print(f"coverage_report: no counts under {args.build} (configure it with "
              "-DRELASI_COVERAGE=ON and run ctest there)", file=sys.stderr)
        return 2
    rows, total, run = [], 0, 0
    for path, lines in sorted(counts.items()):
        n = len(lines)
        hit = sum(1 for c, _ in lines.values() if c > 0)
        total += n
        run += hit
        rows.append((path, n, hit))
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            missed = sorted(ln for ln, (c, _) in lines.items() if c == 0)
            with open(os.path.join(args.out, path.replace("/", "_") + ".txt"), "w") as f:
                f.write(f"{path}: {hit} of {n} lines run; never run:\n")
                for a, b in ranges(missed):
                    f.write(f"  {a}-{b}  {lines[a][1]}\n" if a != b else f"  {a}  {lines[a][1]}\n")
    width = max(len(p) for p, _, _ in rows)
    print(f"{'file':<{width}}  {'lines':>6}  {'run':>6}  {'%':>6}  {'never':>6}")
    for path, n, hit in sorted(rows, key=lambda r: r[1] - r[2], reverse=True):
        print(f"{path:<{width}}  {n:>6}  {hit:>6}  {100.0 * hit / n:>6.1f}  {n - hit:>6}")
    pct = 100.0 * run / total
    print(f"{'product':<{width}}  {total:>6}  {run:>6}  {pct:>6.1f}  {total - run:>6}")
    if args.min is not None and pct < args.min:
        print(f"coverage_report: {pct:.1f}% is below --min {args.min}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
