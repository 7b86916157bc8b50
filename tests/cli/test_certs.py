"""Integration: the hub's certificates over time, with a real relasi-hub on
127.0.0.1 and a real enrolled device. `init` gives the server certificate
825 days; until 7 December nothing renewed it, so every device's sync would
fail from then on for good. `relasi-hub cert` shows how long each
certificate lasts; `cert renew` issues a new server certificate from the
same server CA (devices pin the CA), which the device takes without
enrolling again once serve starts again; serve says at its start when the
certificate has expired or is about to; and a device facing an expired hub
certificate says so, as a matter of dates, not as a refusal of itself."""
import json
import os
import subprocess

from hub_test import HUB_BIN, Hub
from relasi_test import check, eq, main


def hub_cmd(hub, *args, now=None):
    env = dict(os.environ)
    env.pop("RELASI_NOW", None)
    if now:
        env["RELASI_NOW"] = now
    return subprocess.run([HUB_BIN] + [str(a) for a in args] + ["--dir", hub.dir], env=env,
                          capture_output=True, text=True, timeout=60)


def server_crt(hub):
    with open(os.path.join(hub.dir, "server.crt"), "rb") as f:
        return f.read()


def test_the_server_certificate_is_renewed_without_enrolling_again():
    hub = Hub()
    ani = None
    try:
        ani = hub.device("ani", "Ani Wijaya")
        ani.ok("sync")
        r = hub_cmd(hub, "--json", "cert")
        eq(r.returncode, 0, "cert " + r.stderr)
        certs = {c["certificate"]: c for c in json.loads(r.stdout)}
        check(certs["server"]["days_left"] in (824, 825), "a new hub's certificate lasts 825 days",
              certs["server"])
        eq(certs["server"]["names"], ["localhost", "127.0.0.1"], "with the names init was given")
        check(certs["server_ca"]["days_left"] >= 3649 and certs["device_ca"]["days_left"] >= 3649,
              "the CAs last ten years", certs)

        # An expired server certificate (issued for a day in 2020).
        hub.stop()
        r = hub_cmd(hub, "cert", "renew", "--days", "1", now="2020-01-01T00:00:00Z")
        eq(r.returncode, 0, "renewed as of 2020 " + r.stderr)
        check("EXPIRED" in hub_cmd(hub, "cert").stdout, "cert shows it expired")
        seen = len(hub.logtext())
        hub.start()
        check("the server certificate expired on 2020-01-02T00:00:00Z" in hub.logtext()[seen:]
              and "cert renew" in hub.logtext()[seen:], "serve says so at its start",
              hub.logtext()[seen:])
        ani.ok("account", "add", "Toko Sertifikat", "--city", "Ambon")
        r = ani.run("sync")
        eq(r.code, 8, "the device cannot sync with an expired hub certificate: " + r.err)
        check("has expired" in r.err and "relasi-hub cert renew" in r.err and
              "2020-01-02T00:00:00Z" in r.err and "refused this device" not in r.err,
              "it says the hub's certificate expired, when, and who renews it", r.err)
        check(ani.js("status")["pending"] > 0, "the new customer waits on the device")

        # Refused renewals change nothing.
        before = server_crt(hub)
        for args, code, what in ((["--days", "0"], 2, "--days"), (["--days", "3651"], 2, "--days"),
                                 (["--days", "x"], 2, "--days"), (["--host", ","], 5, "--host")):
            r = hub_cmd(hub, "cert", "renew", *args)
            eq(r.returncode, code, f"cert renew {' '.join(args)}: {r.stderr}")
            check(what in r.stderr, "the error names the option", r.stderr)
        eq(server_crt(hub), before, "server.crt unchanged by refused renewals")

        # About to expire: serve warns; the device syncs as before.
        hub.stop()
        eq(hub_cmd(hub, "cert", "renew", "--days", "10").returncode, 0, "renewed for 10 days")
        seen = len(hub.logtext())
        hub.start()
        check("warning: the server certificate expires on" in hub.logtext()[seen:],
              "serve warns of an expiry within 30 days", hub.logtext()[seen:])
        r = ani.run("sync")
        eq(r.code, 0, "the renewed certificate is taken without enrolling again: " + r.err)
        eq(ani.js("status")["pending"], 0, "nothing was lost meanwhile")

        # The usual renewal: 825 days, a quiet start, a new device enrols.
        hub.stop()
        r = hub_cmd(hub, "cert", "renew")
        eq(r.returncode, 0, "cert renew " + r.stderr)
        check("825 days left" in r.stdout or "824 days left" in r.stdout, "825 days", r.stdout)
        seen = len(hub.logtext())
        hub.start()
        check("certificate" not in hub.logtext()[seen:], "nothing to say at start",
              hub.logtext()[seen:])
        ani.ok("sync")
        budi = hub.device("budi", "Budi Santoso")
        budi.ok("sync")
        eq(budi.query("SELECT count(*) FROM accounts WHERE name = 'Toko Sertifikat'"), [(1,)],
           "a device enrolled after the renewal gets the data")
    finally:
        if ani:
            ani.cleanup()
        hub.cleanup()


def test_init_checks_every_host_name():
    """`init --host`: each name must be a host name (dot-separated labels of
    letters, digits and inner hyphens, 1-63 each) or an IP address, IPv6
    too, and --listen must end in a port; a bad one refuses the whole
    command, naming it, before anything is written. (A bad host used to be
    found after the CA keys were written: the directory was left with them,
    and init into it again failed with "File exists".)"""
    import shutil
    import tempfile
    work = tempfile.mkdtemp(prefix="relasi-hosts-")
    try:
        for host in ("-awal.example", "akhir-.example", "dua..titik", "garis_bawah.id",
                     "titik.akhir.", "hub.example,-x", "a" * 64 + ".example", "hub example"):
            d = os.path.join(work, "hub")
            r = subprocess.run([HUB_BIN, "init", d, "--name", "X", "--host", host],
                               capture_output=True, text=True, timeout=60)
            eq(r.returncode, 5, f"--host {host!r} refused as bad input: {r.stderr}")
            bad = host.split(",")[-1]
            check(f"'{bad}'" in r.stderr, "the bad name is quoted", r.stderr)
            check(not os.path.exists(d), "nothing written", host)
        d = os.path.join(work, "hub")
        for listen in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:tujuh"):
            r = subprocess.run([HUB_BIN, "init", d, "--name", "X", "--listen", listen],
                               capture_output=True, text=True, timeout=60)
            check(r.returncode == 5 and f"--listen '{listen}'" in r.stderr,
                  f"--listen {listen!r} refused, named", r.stderr)
            check(not os.path.exists(d), "nothing written", listen)

        # A failure half-way (no room for hub.db: a file-size limit) takes back
        # what init wrote, keys included; the same command then succeeds.
        def no_room():
            import resource
            import signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        os.mkdir(d)
        r = subprocess.run([HUB_BIN, "init", d, "--name", "X"], capture_output=True, text=True,
                           timeout=60, preexec_fn=no_room)
        check(r.returncode != 0 and "hub.db" in r.stderr, "init fails writing hub.db", r.stderr)
        eq(os.listdir(d), [], "the directory is as it was: empty (the keys went too)")
        r = subprocess.run([HUB_BIN, "init", d, "--name", "X"], capture_output=True, text=True,
                           timeout=60)
        eq(r.returncode, 0, f"init again, with room, succeeds: {r.stderr}")
        r = subprocess.run([HUB_BIN, "init", d, "--name", "X"], capture_output=True, text=True,
                           timeout=60)
        check(r.returncode == 5 and "already holds a hub" in r.stderr, "a hub is not made twice",
              r.stderr)
        check(os.path.exists(os.path.join(d, "hub.db")), "and the hub is kept", d)
        d = os.path.join(work, "ok")
        r = subprocess.run([HUB_BIN, "init", d, "--name", "X", "--host",
                            "hub.toko-maju.co.id,10.0.0.7,::1", "--listen", "[::1]:7443"],
                           capture_output=True, text=True, timeout=60)
        eq(r.returncode, 0, f"names, IPv4 and IPv6 together: {r.stderr}")
        with open(os.path.join(d, "hub.json")) as f:
            conf = json.load(f)
        eq((conf["server_name"], conf["address"]), ("hub.toko-maju.co.id", "hub.toko-maju.co.id:7443"),
           "the first name is the one devices are given")
        out = subprocess.run([HUB_BIN, "cert", "--dir", d], capture_output=True, text=True,
                             timeout=60).stdout
        for name in ("hub.toko-maju.co.id", "10.0.0.7", "::1"):
            check(name in out, f"the certificate names {name}", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main([test_the_server_certificate_is_renewed_without_enrolling_again,
          test_init_checks_every_host_name])
