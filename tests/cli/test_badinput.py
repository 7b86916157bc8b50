"""Bad input gets a clear error naming the input, a meaningful exit status,
and leaves the store exactly as it was (its dump before == after)."""
import os

from relasi_test import Store, check, eq, main

NOW = "2026-11-23T02:00:00Z"

# (exit status, text the error must contain, command...). A bad value of
# an option that is data to store is invalid input (5); one that steers a
# command — a filter, a limit, where to search from — is a usage error
# (2), as the reports' options are.
CASES = [
    (5, "2026-02-30", ["deal", "add", "D", "--account", "Toko A", "--close", "2026-02-30"]),
    (5, "31/12/2026", ["task", "add", "T", "--due", "31/12/2026"]),
    (5, "kemarin", ["visit", "log", "Toko A", "--at", "kemarin"]),
    (5, "2026-13-01", ["activity", "log", "Toko A", "--kind", "call", "--at", "2026-13-01T10:00"]),
    (5, "12,34,5", ["deal", "add", "D", "--account", "Toko A", "--amount", "12,34,5"]),
    (5, "1.234", ["deal", "add", "D", "--account", "Toko A", "--amount", "1.234"]),
    (5, "abc", ["deal", "add", "D", "--account", "Toko A", "--amount", "abc"]),
    (5, "XYZ", ["deal", "add", "D", "--account", "Toko A", "--currency", "XYZ"]),
    (5, "101", ["deal", "add", "D", "--account", "Toko A", "--probability", "101"]),
    (5, "account", ["deal", "add", "D"]),
    (5, "91", ["account", "add", "B", "--geo", "91,100"]),
    (5, "200", ["account", "edit", "Toko A", "--geo", "-6.2,200"]),
    (2, "nan", ["nearby", "--geo", "nan,1"]),
    (2, "--km", ["nearby", "--geo", "1,1", "--km", "-1"]),
    (2, "--limit", ["search", "toko", "--limit", "0"]),
    (2, "--limit", ["contact", "list", "--limit", "x"]),
    (2, "maybe", ["deal", "list", "--status", "maybe"]),
    (2, "31/12", ["task", "list", "--due-before", "31/12"]),
    (5, "a@@b.co", ["account", "add", "B", "--email", "a@@b.co"]),
    (5, "no-domain", ["contact", "add", "C", "--email", "no-domain"]),
    (5, "12ab", ["contact", "add", "C", "--phone", "12ab"]),
    (5, "teleport", ["activity", "log", "Toko A", "--kind", "teleport"]),
    (2, "calll", ["activity", "list", "--kind", "calll"]),     # a typo, not an empty list
    (3, "Menang", ["deal", "move", "Deal A", "Menang"]),
    (3, "Nobody", ["contact", "add", "C", "--account", "Nobody Inc"]),
    (4, "Toko", ["account", "edit", "Toko", "--city", "X"]),
    (5, "name", ["account", "add", ""]),
    (5, "control", ["account", "add", "Bad\x07Name"]),
    (5, "maybe", ["task", "edit", "Tugas", "--done", "maybe"]),
    (5, "kota", ["config", "kota", "X"]),
    (5, "XX", ["config", "country", "XX"]),
    # the rep's name goes into --json, reports and exports: text only
    (5, "rep_name", ["config", "rep_name", "Budi\udcff"]),
    (5, "rep_name", ["config", "rep_name", "Budi\x1b[2J"]),
    (5, "rep_name", ["config", "rep_name", "B" * 600]),
    (2, "--bogus", ["account", "add", "B", "--bogus", "1"]),
    (2, "--city", ["account", "add", "B", "--city"]),
    (2, "twice", ["account", "add", "B", "--city", "X", "--city", "Y"]),
    (2, "unexpected", ["account", "show", "Toko A", "extra"]),
    (2, "reason", ["deal", "lost", "Deal A"]),
    # --reason is held to what --lost-reason is (and the hub refuses)
    (5, "control", ["deal", "lost", "Deal A", "--reason", "harga\x07\x1b[31m"]),
    (5, "longer than 512", ["deal", "lost", "Deal A", "--reason", "x" * 600]),
    (5, "UTF-8", ["deal", "lost", "Deal A", "--reason", "\udcff\udcfe"]),
    (5, "control", ["deal", "move", "Deal A", "Lost", "--reason", "a\x01b"]),
    (5, "required field 'name'", ["import", "accounts", "@BADSYS"]),
]


def test_each_bad_input_changes_nothing():
    s = Store(now=NOW)
    s.ok("account", "add", "Toko A")
    s.ok("account", "add", "Toko B")
    s.ok("deal", "add", "Deal A", "--account", "Toko A")
    s.ok("task", "add", "Tugas")
    badsys = os.path.join(s.home, "sys.csv")
    with open(badsys, "w") as f:
        f.write("city,created_at\nBandung,2020-01-01T00:00:00Z\n")
    before = s.dump()
    for code, text, cmd in CASES:
        cmd = [badsys if c == "@BADSYS" else c for c in cmd]
        r = s.fails(code, *cmd, now=NOW)
        check(text.lower() in r.err.lower(), f"error for {cmd} names {text!r}", r)
        eq(s.dump(), before, f"store unchanged after {cmd}")
    s.cleanup()


def test_csv_all_or_nothing():
    s = Store(now=NOW)
    s.ok("account", "add", "Toko A")
    before = s.dump()
    path = os.path.join(s.home, "contacts.csv")
    with open(path, "w") as f:
        f.write("name,account,phone,email\n"
                "Andi,Toko A,0811111111,andi@example.com\n"
                "Budi,Toko Baru,0812222222,budi@example.com\n"
                "Citra,Toko A,0813333333,citra@@example\n"
                "Dewi,Toko A,0814444444,dewi@example.com\n")
    r = s.fails(5, "import", "contacts", path)
    check("line 4" in r.err and "citra@@example" in r.err, "the bad row's line and value", r)
    eq(s.dump(), before, "nothing imported, not even the new account of line 3")
    r = s.fails(5, "import", "contacts", path, "--map", "Nama=name")
    check("Nama" in r.err, "a map naming a missing column is refused", r)
    eq(s.dump(), before, "bad map changes nothing")
    s.cleanup()


def test_csv_header_errors_name_the_file():
    """An error in the header row (bytes that are not UTF-8, as a UTF-16
    "Unicode text" export has; a required column missing) names the file
    and the line, as errors in later rows do, for every import."""
    s = Store(now=NOW)
    before = s.dump()
    utf16 = os.path.join(s.home, "pelanggan-utf16.csv")
    with open(utf16, "wb") as f:
        f.write("name,city\nToko A,Bandung\n".encode("utf-16"))
    nocol = os.path.join(s.home, "tanpa-judul.csv")
    with open(nocol, "w") as f:
        f.write("\nNama,Kota\nToko A,Bandung\n")
    for what in ("accounts", "contacts", "deals"):
        r = s.fails(5, "import", what, utf16)
        check("pelanggan-utf16.csv: line 1" in r.err and "UTF-8" in r.err,
              f"import {what}: the file and line of the bad header", r)
        r = s.fails(5, "import", what, nocol)
        check("tanpa-judul.csv: line 2" in r.err and "required field" in r.err,
              f"import {what}: the file and line of a header without a required column", r)
    eq(s.dump(), before, "nothing imported")
    s.cleanup()


def test_money_bound():
    """One amount is at most 10^15 minor units either way (relasi/limits.h:
    headroom so that sums of amounts stay inside int64). Past it, `deal
    add`, `deal edit` and `import deals` (all-or-nothing, and --skip-bad)
    refuse with exit 5 naming the field and the value, and write nothing;
    at it, the amount is kept exactly."""
    bound = 10 ** 15                              # minor units
    at = "10000000000000.00"                     # the bound in IDR (2 decimals)
    past = ["10000000000000.01", "-10000000000000.01", "92233720368547758.07",
            "10000000000001"]
    s = Store(now=NOW)
    s.ok("account", "add", "Toko A")
    s.ok("deal", "add", "Deal A", "--account", "Toko A", "--amount", "5", "--currency", "IDR")
    before = s.dump()
    for v in past:
        r = s.fails(5, "deal", "add", "D", "--account", "Toko A", "--amount", v,
                    "--currency", "IDR")
        check("amount" in r.err and v in r.err and at in r.err,
              f"deal add --amount {v}: the field, the value and the bound are named", r)
        r = s.fails(5, "deal", "edit", "Deal A", "--amount", v)
        check("amount" in r.err and v in r.err, f"deal edit --amount {v} names both", r)
        eq(s.dump(), before, f"store unchanged after amount {v}")
    path = os.path.join(s.home, "deals.csv")
    with open(path, "w") as f:
        f.write("title,account,amount,currency\n"
                "Besar,Toko A,%s,IDR\n"
                "Terlalu besar,Toko B,%s,IDR\n" % (at, past[0]))
    r = s.fails(5, "import", "deals", path)
    check("line 3" in r.err and past[0] in r.err and "amount" in r.err,
          "import deals: the line, the column and the value", r)
    eq(s.dump(), before, "nothing imported, not even the new account of line 3")
    r = s.ok("--json", "import", "deals", path, "--skip-bad")
    eq((r.json()["imported"], r.json()["bad"]), (1, 1), "--skip-bad keeps the good row only")
    eq(s.query("SELECT amount, currency FROM deals WHERE title = 'Besar'"), [(bound, "IDR")],
       "an amount at the bound is kept exactly")
    eq(s.query("SELECT count(*) FROM deals WHERE title = 'Terlalu besar'"), [(0,)],
       "the row past the bound is not")
    s.ok("deal", "add", "Rugi", "--account", "Toko A", "--amount", "-" + at, "--currency", "IDR")
    eq(s.query("SELECT amount FROM deals WHERE title = 'Rugi'"), [(-bound,)], "and -bound too")
    s.cleanup()


def test_vcard_refused_unchanged():
    s = Store(now=NOW)
    before = s.dump()
    path = os.path.join(s.home, "old.vcf")
    with open(path, "w") as f:
        f.write("BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Old Phone\r\nEND:VCARD\r\n")
    s.fails(5, "vcard", "import", path, contains="2.1")
    with open(path, "w") as f:
        f.write("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Good\r\nEND:VCARD\r\n"
                "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bad\r\nTEL:12ab\r\nEND:VCARD\r\n")
    r = s.fails(5, "vcard", "import", path, contains="12ab")
    check("line 5" in r.err, "the bad card's line is named", r)
    s.fails(7, "vcard", "import", os.path.join(s.home, "missing.vcf"), contains="missing.vcf")
    eq(s.dump(), before, "no contact imported from a file with a bad card")
    s.cleanup()


if __name__ == "__main__":
    main([test_each_bad_input_changes_nothing, test_csv_all_or_nothing,
          test_csv_header_errors_name_the_file, test_money_bound,
          test_vcard_refused_unchanged])
