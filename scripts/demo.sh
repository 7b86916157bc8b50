#!/bin/sh
# scripts/demo.sh — the README's demo command: installs what is missing,
# builds relasi and relasi-hub, and tells the whole story with the real
# binaries: a hub on 127.0.0.1 (a free port), two reps and a manager
# enrolled over mutual TLS, a day of offline work on both laptops, sync, a
# conflict the admin resolves, a note merged three ways, a duplicate
# customer merged, the manager's pipeline and reports over the shared data,
# the audit history and a backup. Everything lives
# in a temporary directory and is removed at the end.
set -eu
cd "$(dirname "$0")/.."

sh scripts/setup.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

BIN="$(pwd)/build"
DEMO="$(mktemp -d /tmp/relasi-demo.XXXXXX)"
export TZ="${TZ:-WIB-7}"   # POSIX form: needs no tzdata
HUB_PID=
cleanup() {
	if [ -n "$HUB_PID" ]; then kill "$HUB_PID" 2>/dev/null || true; wait "$HUB_PID" 2>/dev/null || true; fi
	rm -rf "$DEMO"
}
trap cleanup EXIT INT TERM

# Each laptop is its own store; RELASI_HOME picks it.
BUDI="$DEMO/budi"; ANI="$DEMO/ani"; MAYA="$DEMO/maya"
RELASI_HUB_DIR="$DEMO/hub"; export RELASI_HUB_DIR
RELASI_HOME="$BUDI"; export RELASI_HOME

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show_cmd() { printf '%s' "$1"; shift; for a in "$@"; do case "$a" in *" "*|"") printf " '%s'" "$a";; *) printf ' %s' "$a";; esac; done; printf '\n'; }
# run: relasi on the laptop in $RELASI_HOME; as NAME: relasi on NAME's laptop
run() { show_cmd "[$(basename "$RELASI_HOME")]\$ relasi" "$@"; "$BIN/relasi" "$@"; }
as() { who=$1; shift; ( RELASI_HOME="$DEMO/$who"; export RELASI_HOME; run "$@" ); }
hub() { show_cmd "[admin]\$ relasi-hub" "$@"; "$BIN/relasi-hub" "$@"; }

say "The admin sets up the hub: its store, a CA for the server, another for devices."
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hub init "$RELASI_HUB_DIR" --name "PT Dingin Sejahtera" --host localhost,127.0.0.1 --listen "127.0.0.1:$PORT"
"$BIN/relasi-hub" serve "$RELASI_HUB_DIR" 2>"$DEMO/hub.log" >"$DEMO/hub.out" &
HUB_PID=$!
i=0; until grep -q listening "$DEMO/hub.out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "the hub did not start:"; cat "$DEMO/hub.log"; exit 1; }
	sleep 0.1
done
echo "(relasi-hub serve is running: $(cat "$DEMO/hub.out"))"

say "Three people join: two reps and their sales manager. Each gets a one-time token."
TOK_BUDI=$(hub user add budi --name "Budi Santoso" --role rep | tail -n 1)
TOK_ANI=$(hub user add ani --name "Ani Wijaya" --role rep | tail -n 1)
TOK_MAYA=$(hub user add maya --name "Maya Kusuma" --role manager | tail -n 1)
printf '(a token carries the hub address and its CA fingerprint: %.40s...)\n' "$TOK_BUDI"
as budi enroll "$TOK_BUDI" --name "budi-laptop"
as ani enroll "$TOK_ANI" --name "ani-laptop"
as maya enroll "$TOK_MAYA" --name "maya-laptop"
as budi config currency IDR >/dev/null

say "Monday morning, Bandung. Budi starts his day with no network."

say "He loads the customer list marketing gave him as an Excel CSV (';', BOM, CRLF)."
csv="$DEMO/pelanggan.csv"
printf '\357\273\277Nama Toko;Kota;Telepon;Lokasi Lat;Lokasi Lon;Catatan\r\n' > "$csv"
printf 'Toko Makmur Jaya;Bandung;0812-2000-1111;-6.9147;107.6098;"Grosir elektronik; buka 08.00"\r\n' >> "$csv"
printf 'CV Sinar Abadi;Cimahi;(022) 6650 123;-6.8722;107.5425;Distributor AC\r\n' >> "$csv"
printf 'Warung Bu Tini;Bandung;+62 813 2222 3333;-6.9175;107.6191;\r\n' >> "$csv"
run import accounts "$csv" --map "Nama Toko=name,Kota=city,Telepon=phone,Lokasi Lat=lat,Lokasi Lon=lon,Catatan=notes"
run account list

say "A new customer and its owner, met on the road."
run account add "Apotek Sehat Sentosa" --city Bandung --phone 022-7310099 --geo -6.9034,107.6181 --tags "farmasi, baru"
run contact add "Siti Rahma" --account "Makmur" --title Pemilik --phone "0812 3456 789" --email Siti@MakmurJaya.co.id

say "Deals go into the pipeline and move through its stages."
run deal add "Kulkas 20 unit" --account Makmur --amount 45000000 --close 2026-12-15 --contact Siti
run deal add "AC split 8 unit" --account Sinar --amount 36000000 --close 2026-12-20
run deal add "Freezer vaksin" --account Apotek --amount 18500000 --close 2027-01-10
run deal move Kulkas Proposal
run deal move "AC split" Negotiation
run deal won "AC split"

say "A visit: check-in place and time, outcome, notes, and the next step."
run visit log Makmur --geo -6.9149,107.6101 --contact Siti --deal Kulkas \
    --outcome "Minta penawaran resmi" --notes "Ingin kulkas dua pintu, hemat listrik" \
    --next "Kirim penawaran harga" --due +2d
run activity log "Bu Tini" --kind call --outcome "Belum butuh" --notes "Telepon lagi bulan depan"
run deal lost Freezer --reason "Anggaran dipotong"
run task add "Konfirmasi jadwal pengiriman AC" --account Sinar --due today
run task add "Tagih DP kulkas" --account Makmur --due yesterday

say "Where am I, and who is near? (R*Tree, by distance)"
run nearby --geo -6.9150,107.6100 --km 3

say "Full-text search over customers, contacts and visit notes."
run search kulkas
run search siti

say "The customer's whole story, newest first (the customer 360)."
run show Makmur

say "Today: follow-ups due or overdue, and today's visits."
run today

say "The pipeline: per stage, count, amount and weighted amount."
run pipeline

say "Budi syncs at lunch in a café: his morning goes to the hub."
run sync
as ani sync

say "Afternoon, both offline again. Both touch Toko Makmur Jaya."
run account edit Makmur --phone 0812-2000-9999
as ani account edit Makmur --region "Jawa Barat"
echo "(the same field on both laptops: the store's e-mail address)"
run account edit Makmur --email sales@makmurjaya.co.id
as ani account edit Makmur --email info@makmurjaya.co.id
echo "(both add a line to the customer's notes)"
run account edit Makmur --notes "$(printf 'Grosir elektronik; buka 08.00\nParkir di belakang')"
as ani account edit Makmur --notes "$(printf 'Pembayaran tempo 30 hari\nGrosir elektronik; buka 08.00')"
echo "(Ani meets a shop Budi already has, and records it again)"
as ani account add "TOKO MAKMUR  JAYA" --city bandung --phone 0812-2000-1111

say "Evening: everyone syncs (twice, so each sees the others' changes)."
run sync; as ani sync; as maya sync; run sync; as ani sync

say "Different fields merged; the notes merged three ways; one field in conflict."
as maya account show "Toko Makmur Jaya"
echo "(each rep sees the conflict from their side; reps cannot decide it)"
as budi conflicts
as ani conflicts

say "The admin looks at the conflict and the duplicate, and decides."
hub status
hub conflicts
hub conflicts show 1
hub conflicts resolve 1 --take
hub duplicates

say "The duplicate: the admin checks a merge first, then merges Ani's record into Budi's."
set -- $("$BIN/relasi-hub" --json duplicates |
	python3 -c 'import json, sys; d = json.load(sys.stdin)[0]; print(d["row_a"], d["row_b"])')
SURVIVOR=$1 LOSER=$2
hub duplicates merge "$SURVIVOR" "$LOSER" --prefer phone=loser --dry-run
hub duplicates merge "$SURVIVOR" "$LOSER" --prefer phone=loser >/dev/null
echo "(merged: the loser becomes a redirect every laptop receives)"

say "The decision and the merge are changes like any others: they reach every laptop."
run sync; as ani sync; as maya sync
RELASI_HOME="$ANI" "$BIN/relasi" account show "Toko Makmur Jaya" --json |
	python3 -c 'import json, sys; print("the e-mail on Ani\x27s laptop now:", json.load(sys.stdin)["email"])'
as budi conflicts
echo "(the admin sees which laptops hold the decision, and how far behind each one is)"
hub conflicts show 1 | grep "received by"
hub device list

say "The manager reviews the pipeline over everyone's deals."
as ani deal add "Showcase 3 pintu" --account "Toko Makmur Jaya" --amount 27000000 --close 2026-12-30 >/dev/null
as ani sync >/dev/null; as maya sync >/dev/null
as maya pipeline
hub pipeline

say "The manager's reports, on the same data: forecast by month, win rate by rep."
as maya report forecast
as maya report winrate --by rep
as maya report html "$DEMO/report.html"

say "Who changed what: every batch is a commit of an audit history (git) beside the hub."
hub history "$SURVIVOR" --field email
git -C "$RELASI_HUB_DIR/audit.git" log --format='%h %an: %s' | head -n 5
hub audit verify

say "A backup while the hub keeps serving: a snapshot, the audit history, keys, a manifest."
hub backup "$DEMO/hub-backup.tar.zst"

say "Nothing is left behind: every change acknowledged."
run status
as ani status
say "Done. (Everything was in $DEMO and is removed now.)"
