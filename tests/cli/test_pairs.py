"""Integration: fields that hold one value together (a deal's amount and its
currency, relasi/model.h rl_model_partner) are decided as one at the hub.
A real relasi-hub on 127.0.0.1 and real devices over mutual TLS.

Merged field by field, a conflict on the amount alone kept one side's minor
units with the other side's currency: 20.00 USD became 2000 JPY."""
import json

from hub_test import Hub, ahead, assert_converged, sync_all
from relasi_test import check, eq, main


def deal_money(dev):
    return dev.query("SELECT amount, currency FROM deals WHERE title = 'Kulkas'")


def test_an_amount_and_its_currency_are_decided_together():
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")       # may edit ani's deal
    try:
        ani.ok("account", "add", "Toko A", "--city", "Bandung")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko A", "--amount", "12.50",
               "--currency", "USD")
        sync_all([ani, budi])
        # ani moves the deal to yen; budi, later and unaware, raises it in dollars
        ani.ok("deal", "edit", "Kulkas", "--currency", "JPY", "--amount", "1900",
               now=ahead(-120))
        budi.ok("deal", "edit", "Kulkas", "--amount", "20", now=ahead(-60))
        eq(sorted(budi.query("SELECT field, value FROM rl_outbox WHERE state = 'pending'")),
           [("amount", 2000), ("currency", "USD")],
           "the amount goes out with its currency, unchanged as it is")
        eq(ani.js("sync")["conflicts"], 0, "ani first: applied")
        eq(budi.js("sync")["conflicts"], 2, "budi: the pair is one conflict, on both fields")
        eq(hub.query("SELECT amount, currency FROM deals"), [(2000, "USD")],
           "the later side's whole value for now (was 2000 JPY: budi's amount, ani's currency)")
        rows = hub.query("SELECT id, field, hub_value, in_value, winner, partner "
                         "FROM hub_conflicts ORDER BY field")
        eq([r[1:5] for r in rows], [("amount", 1900, 2000, "incoming"),
                                    ("currency", "JPY", "USD", "incoming")],
           "both fields' values kept, the same provisional winner")
        eq((rows[0][5], rows[1][5]), (rows[1][0], rows[0][0]), "each names the other")
        amount_id, currency_id = rows[0][0], rows[1][0]
        out = hub.admin("conflicts")
        check("1900 JPY" in out and "20.00 USD" in out, "each side's amount in its own "
              "currency (the hub's read 19.00 USD)", out)
        show = hub.admin("conflicts", "show", str(amount_id))
        check(f"conflict {currency_id} on currency" in show and "--keep or --take" in show,
              "show names the pair's other conflict and how it is decided", show)
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(deal_money(ani), [(2000, "USD")], "ani has budi's whole value for now")
        mine = {c["field"]: c["yours"] for c in ani.js("conflicts")}
        eq(mine, {"amount": "1900 JPY", "currency": "JPY"},
           "ani's list: ani's amount in ani's currency (it read 19.00 USD)")

        # --keep on one decides both: the hub's whole value, never half of it
        r = hub.admin_run("conflicts", "resolve", str(amount_id), "--keep")
        eq(r.returncode, 0, f"resolved: {r.stderr}")
        check(f"conflict {currency_id}, on currency of the same pair, resolved with it" in r.stdout,
              "the output tells the pair's other decision", r.stdout)
        eq(hub.query("SELECT amount, currency FROM deals"), [(1900, "JPY")], "ani's whole value")
        eq(hub.query("SELECT state, resolution FROM hub_conflicts ORDER BY id"),
           [("resolved", "keep"), ("resolved", "keep")], "both decided, the same way")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        for d in (ani, budi):
            eq(deal_money(d), [(1900, "JPY")], "every device has the decision, both fields")

        # the pushing side older: the hub's whole value stays, not its currency
        # with the incoming amount (stamps ahead of every one seen so far: a
        # device's clock never goes below a stamp it has received)
        budi.ok("deal", "edit", "Kulkas", "--amount", "2500", now=ahead(30))
        ani.ok("deal", "edit", "Kulkas", "--currency", "IDR", "--amount", "300000",
               now=ahead(60))
        ani.ok("sync")
        budi.ok("sync")
        eq(hub.query("SELECT amount, currency FROM deals"), [(30000000, "IDR")],
           "ani's later pair stands")
        js = json.loads(hub.admin("--json", "conflicts"))
        eq(sorted((c["field"], c["winner"]) for c in js), [("amount", "hub"), ("currency", "hub")],
           "two conflicts, the hub's side kept for now")
        ids = {c["field"]: c["id"] for c in js}
        # --value decides one field only: the other stays open for its own decision
        r = hub.admin_run("--json", "conflicts", "resolve", str(ids["currency"]), "--value", "IDR")
        eq(r.returncode, 0, f"resolved: {r.stderr}")
        js = json.loads(r.stdout)
        eq((js["conflict"], js["partner"]), (ids["currency"], None), "--value: this one only")
        check(f"conflict {ids['amount']} on amount, the other field of the same pair, is still "
              "open" in r.stderr, "and the admin is told the other one waits", r.stderr)
        eq(hub.query("SELECT field, state FROM hub_conflicts WHERE id IN (?, ?) ORDER BY field",
                     ids["amount"], ids["currency"]),
           [("amount", "open"), ("currency", "resolved")], "the amount still to decide")
        r = json.loads(hub.admin("--json", "conflicts", "resolve", str(ids["amount"]), "--take"))
        eq((r["partner"], r["value"]), (None, 2500), "its pair decided already: this one alone")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_an_earlier_amount_does_not_land_in_a_later_currency():
    """budi raises the amount (his stamp earlier) while ani, later, moves the
    deal from dollars to euros without touching the amount. Field by field
    the amount was a fast-forward and only the currency a conflict, which
    ani's later stamp won: 20.00 EUR, a sum nobody entered. As a pair it
    is one conflict, and the later side, ani's 12.50 EUR, stands whole."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")
    try:
        ani.ok("account", "add", "Toko A", "--city", "Bandung")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko A", "--amount", "12.50",
               "--currency", "USD")
        sync_all([ani, budi])
        budi.ok("deal", "edit", "Kulkas", "--amount", "20", now=ahead(30))
        ani.ok("deal", "edit", "Kulkas", "--currency", "EUR", now=ahead(60))
        eq(deal_money(ani), [(1250, "EUR")], "same minor units: the amount stays as typed")
        eq(ani.js("sync")["conflicts"], 0, "ani first: applied")
        eq(budi.js("sync")["conflicts"], 2, "budi's pair against ani's: one conflict, two fields")
        eq(hub.query("SELECT amount, currency FROM deals"), [(1250, "EUR")],
           "ani's later whole value (was 2000 EUR: budi's amount applied alone)")
        eq(sorted(hub.query("SELECT field, hub_value, in_value, winner FROM hub_conflicts")),
           [("amount", 1250, 2000, "hub"), ("currency", "EUR", "USD", "hub")],
           "budi's whole value kept for the admin")
        hub.admin("conflicts", "resolve", "1", "--take")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        for d in (ani, budi):
            eq(deal_money(d), [(2000, "USD")], "--take: budi's whole value everywhere")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_a_pair_edited_alone_merges_as_before():
    """An amount edited on one device while another edits other fields of the
    deal (or the same amount) merges with no conflict: the currency sent
    with it is the one the hub has."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")
    try:
        ani.ok("account", "add", "Toko A", "--city", "Bandung")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko A", "--amount", "1500000")
        sync_all([ani, budi])
        ani.ok("deal", "edit", "Kulkas", "--amount", "1750000")
        budi.ok("deal", "edit", "Kulkas", "--close", "2026-12-31")
        r = ani.js("sync")
        eq((r["applied"], r["same"], r["conflicts"]), (1, 1, 0),
           "the amount applied, its currency the same")
        eq(budi.js("sync")["conflicts"], 0, "another field: merged, no conflict")
        budi.ok("deal", "edit", "Kulkas", "--amount", "1750000")
        eq(budi.js("sync")["conflicts"], 0, "the same value: nothing to decide")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT amount, currency, expected_close FROM deals"),
           [(175000000, "IDR", "2026-12-31")], "both edits")
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(0,)], "no conflict")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_resolve_with_a_value_reads_it_as_the_fields_type():
    """`conflicts resolve --value` reads the admin's text as the field's own
    type: money in minor units of the record's currency (yen has none), a
    percentage as an integer, a latitude as a real, nothing as no value."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")
    try:
        ani.ok("account", "add", "Toko A", "--city", "Bandung", "--geo", "-6.90,107.60")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko A", "--amount", "1900",
               "--currency", "JPY", "--probability", "40")
        sync_all([ani, budi])
        ani.ok("deal", "edit", "Kulkas", "--amount", "2000", "--probability", "50")
        ani.ok("account", "edit", "Toko A", "--lat", "-6.91")
        budi.ok("deal", "edit", "Kulkas", "--amount", "2100", "--probability", "60")
        budi.ok("account", "edit", "Toko A", "--lat", "-6.92")
        ani.ok("sync")
        budi.ok("sync")
        ids = {c["field"]: c["id"] for c in json.loads(hub.admin("--json", "conflicts"))}
        eq(sorted(ids), ["amount", "lat", "probability"], "three conflicts to decide")
        r = json.loads(hub.admin("--json", "conflicts", "resolve", str(ids["amount"]),
                                 "--value", "2500"))
        eq(r["value"], 2500, "2500 yen: 2500 minor units (not 250000, as in rupiah)")
        hub.admin("conflicts", "resolve", str(ids["probability"]), "--value", "")
        hub.admin("conflicts", "resolve", str(ids["lat"]), "--value", "-6.925")
        eq(hub.query("SELECT amount, typeof(amount), currency, probability FROM deals"),
           [(2500, "integer", "JPY", None)], "the deal as decided, in the field's types")
        eq(hub.query("SELECT lat, typeof(lat) FROM accounts"), [(-6.925, "real")],
           "the latitude as a number")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        for d in (ani, budi):
            eq(d.query("SELECT amount, currency, probability FROM deals"), [(2500, "JPY", None)],
               "every device has the decisions")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


if __name__ == "__main__":
    main([test_an_amount_and_its_currency_are_decided_together,
          test_an_earlier_amount_does_not_land_in_a_later_currency,
          test_a_pair_edited_alone_merges_as_before,
          test_resolve_with_a_value_reads_it_as_the_fields_type])
