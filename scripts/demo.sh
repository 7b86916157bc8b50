#!/bin/sh
# scripts/demo.sh — the README's demo command: installs what is missing,
# builds relasi, and tells a field rep's offline day with the real binary on
# a fresh store in a temporary directory (nothing here needs a network).
set -eu
cd "$(dirname "$0")/.."

sh scripts/setup.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

RELASI="$(pwd)/build/relasi"
RELASI_HOME="$(mktemp -d /tmp/relasi-demo.XXXXXX)"
export RELASI_HOME
export TZ="${TZ:-WIB-7}"   # POSIX form: needs no tzdata
trap 'rm -rf "$RELASI_HOME"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ relasi'; for a in "$@"; do case "$a" in *" "*) printf " '%s'" "$a";; *) printf ' %s' "$a";; esac; done; printf '\n'; "$RELASI" "$@"; }

say "Monday morning, Bandung. Budi sets up his laptop (no network all day)."
run init --name "Budi Santoso" --country ID --currency IDR

say "He loads the customer list marketing gave him as an Excel CSV (';', BOM, CRLF)."
csv="$RELASI_HOME/pelanggan.csv"
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

say "Every change is waiting in the outbox for the next sync."
run status
run outbox --state pending | head -8
echo "…"
say "Done. (The store was in $RELASI_HOME and is removed now.)"
