#!/usr/bin/env python3
"""gen_dataset.py — a deterministic, seeded generator of realistic Indonesian
field-sales data as CSV files that `relasi import` accepts.

What it makes (full size, --scale 1):
    accounts.csv     20,000 customers: "Toko ...", "CV ...", "PT ...", "UD ...",
                     apotek, bengkel, warung...; a real Indonesian city with a
                     plausible lat/lon (city centre + a few km of scatter), its
                     province as the region, a landline or mobile phone in the
                     forms people type (0812-3456-7890, (022) 720-1234,
                     +62 812...), a lower-case e-mail, a street address,
                     comma-separated tags (quoted) and sometimes multi-line notes.
    contacts.csv    100,000 people with Indonesian first / middle / last names,
                     a job title, a mobile phone, a lower-case e-mail, the
                     customer they work for (by name).
    deals.csv        50,000 deals: product and quantity, an amount in rupiah,
                     a pipeline stage by name, an ISO expected-close date, the
                     contact person by name, a lost reason for lost deals.
    activities.csv  300,000 visits, calls, meetings and e-mails: ISO 8601
                     times with the city's own offset (WIB +07:00, WITA +08:00,
                     WIT +09:00), a check-in lat/lon for visits, outcome, notes.

Why it is shaped like this: `relasi import` names customers and contacts by
name (spreadsheets carry names, not ids), so every account name and every
contact name is unique (case-insensitively) and every reference resolves to
exactly one record through the name index. Deals are not referenced from
activities: a deal is named by its title, which is neither unique nor indexed.
The columns use the field names and option names that `relasi import`
documents (`account`, `contact`, `stage`, `close`, ...; see client/cmd_io.c
and sync/src/model.c).

Same --seed and --scale, same bytes: the generator draws only from its own
random.Random(seed) and fixed dates (no clock, no hash randomisation).

usage: python3 bench/gen_dataset.py [--scale 1.0] [--seed 42] [--out DIR (default bench/data)]
"""
import argparse
import csv
import os
import random
import sys

FULL = {"accounts": 20000, "contacts": 100000, "deals": 50000, "activities": 300000}

# city, province, lat, lon, weight (~ population), landline area code, UTC offset (h)
CITIES = [
    ("Jakarta", "DKI Jakarta", -6.2088, 106.8456, 100, "021", 7),
    ("Surabaya", "Jawa Timur", -7.2575, 112.7521, 30, "031", 7),
    ("Bandung", "Jawa Barat", -6.9175, 107.6191, 26, "022", 7),
    ("Bekasi", "Jawa Barat", -6.2383, 106.9756, 25, "021", 7),
    ("Medan", "Sumatera Utara", 3.5952, 98.6722, 24, "061", 7),
    ("Tangerang", "Banten", -6.1783, 106.6319, 20, "021", 7),
    ("Depok", "Jawa Barat", -6.4025, 106.7942, 20, "021", 7),
    ("Semarang", "Jawa Tengah", -6.9667, 110.4167, 17, "024", 7),
    ("Palembang", "Sumatera Selatan", -2.9761, 104.7754, 17, "0711", 7),
    ("Makassar", "Sulawesi Selatan", -5.1477, 119.4327, 15, "0411", 8),
    ("Bogor", "Jawa Barat", -6.5971, 106.8060, 11, "0251", 7),
    ("Batam", "Kepulauan Riau", 1.0456, 104.0305, 12, "0778", 7),
    ("Pekanbaru", "Riau", 0.5071, 101.4478, 10, "0761", 7),
    ("Bandar Lampung", "Lampung", -5.3971, 105.2668, 10, "0721", 7),
    ("Padang", "Sumatera Barat", -0.9471, 100.4172, 9, "0751", 7),
    ("Malang", "Jawa Timur", -7.9666, 112.6326, 9, "0341", 7),
    ("Denpasar", "Bali", -8.6705, 115.2126, 9, "0361", 8),
    ("Samarinda", "Kalimantan Timur", -0.5022, 117.1536, 8, "0541", 8),
    ("Banjarmasin", "Kalimantan Selatan", -3.3186, 114.5944, 7, "0511", 8),
    ("Pontianak", "Kalimantan Barat", -0.0263, 109.3425, 6, "0561", 7),
    ("Yogyakarta", "DI Yogyakarta", -7.7956, 110.3695, 6, "0274", 7),
    ("Surakarta", "Jawa Tengah", -7.5755, 110.8243, 5, "0271", 7),
    ("Manado", "Sulawesi Utara", 1.4748, 124.8421, 5, "0431", 8),
    ("Balikpapan", "Kalimantan Timur", -1.2379, 116.8529, 7, "0542", 8),
    ("Jambi", "Jambi", -1.6101, 103.6131, 6, "0741", 7),
    ("Cirebon", "Jawa Barat", -6.7320, 108.5523, 3, "0231", 7),
    ("Mataram", "Nusa Tenggara Barat", -8.5833, 116.1167, 4, "0370", 8),
    ("Kupang", "Nusa Tenggara Timur", -10.1772, 123.6070, 4, "0380", 8),
    ("Jayapura", "Papua", -2.5337, 140.7181, 3, "0967", 9),
    ("Ambon", "Maluku", -3.6954, 128.1814, 3, "0911", 9),
    ("Kendari", "Sulawesi Tenggara", -3.9985, 122.5127, 3, "0401", 8),
    ("Palu", "Sulawesi Tengah", -0.8917, 119.8707, 4, "0451", 8),
    ("Tasikmalaya", "Jawa Barat", -7.3274, 108.2207, 7, "0265", 7),
    ("Sukabumi", "Jawa Barat", -6.9277, 106.9300, 3, "0266", 7),
    ("Cimahi", "Jawa Barat", -6.8722, 107.5422, 6, "022", 7),
    ("Serang", "Banten", -6.1200, 106.1503, 7, "0254", 7),
    ("Purwokerto", "Jawa Tengah", -7.4214, 109.2344, 3, "0281", 7),
    ("Kediri", "Jawa Timur", -7.8480, 112.0178, 3, "0354", 7),
    ("Jember", "Jawa Timur", -8.1724, 113.7003, 3, "0331", 7),
    ("Pematangsiantar", "Sumatera Utara", 2.9595, 99.0687, 3, "0622", 7),
    ("Banda Aceh", "Aceh", 5.5483, 95.3238, 3, "0651", 7),
    ("Bengkulu", "Bengkulu", -3.7928, 102.2608, 4, "0736", 7),
    ("Gorontalo", "Gorontalo", 0.5435, 123.0568, 2, "0435", 8),
    ("Ternate", "Maluku Utara", 0.7893, 127.3773, 2, "0921", 9),
    ("Tegal", "Jawa Tengah", -6.8694, 109.1402, 3, "0283", 7),
    ("Pekalongan", "Jawa Tengah", -6.8898, 109.6746, 3, "0285", 7),
    ("Madiun", "Jawa Timur", -7.6298, 111.5239, 2, "0351", 7),
    ("Sidoarjo", "Jawa Timur", -7.4478, 112.7183, 5, "031", 7),
    ("Karawang", "Jawa Barat", -6.3227, 107.3376, 4, "0267", 7),
    ("Garut", "Jawa Barat", -7.2279, 107.9087, 3, "0262", 7),
    ("Magelang", "Jawa Tengah", -7.4797, 110.2177, 2, "0293", 7),
    ("Palangka Raya", "Kalimantan Tengah", -2.2161, 113.9135, 3, "0536", 7),
    ("Tarakan", "Kalimantan Utara", 3.3000, 117.6333, 2, "0551", 8),
    ("Sorong", "Papua Barat Daya", -0.8762, 131.2558, 2, "0951", 9),
    ("Pangkal Pinang", "Kepulauan Bangka Belitung", -2.1291, 106.1138, 2, "0717", 7),
    ("Tanjung Pinang", "Kepulauan Riau", 0.9186, 104.4460, 2, "0771", 7),
    ("Dumai", "Riau", 1.6667, 101.4500, 2, "0765", 7),
    ("Probolinggo", "Jawa Timur", -7.7543, 113.2159, 2, "0335", 7),
]

MOBILE_PREFIXES = ["0811", "0812", "0813", "0821", "0822", "0823", "0851", "0852", "0853",
                   "0814", "0815", "0816", "0855", "0856", "0857", "0858", "0817", "0818",
                   "0819", "0859", "0877", "0878", "0831", "0832", "0838", "0895", "0896",
                   "0897", "0898", "0881", "0882", "0887"]

FIRST = ["Budi", "Siti", "Agus", "Sri", "Dewi", "Andi", "Rina", "Wahyu", "Eko", "Nur",
         "Putri", "Hendra", "Yusuf", "Ahmad", "Muhammad", "Dian", "Fitri", "Indah", "Rudi",
         "Joko", "Bambang", "Slamet", "Wati", "Ratna", "Yuli", "Rizki", "Fajar", "Ayu",
         "Kartika", "Bayu", "Dimas", "Arif", "Teguh", "Hadi", "Irwan", "Lina", "Maya",
         "Nita", "Putu", "Made", "Ketut", "Wayan", "Nyoman", "Gede", "Komang", "Adi",
         "Yanti", "Sari", "Intan", "Mega", "Reza", "Fauzi", "Hasan", "Ilham", "Rahmat",
         "Taufik", "Yoga", "Galih", "Citra", "Anisa", "Nabila", "Aulia", "Bagus", "Cahya",
         "Dedi", "Evi", "Gita", "Hesti", "Iwan", "Jaka", "Kiki", "Lukman", "Mulyadi",
         "Novi", "Oktavia", "Puspita", "Santi", "Tuti", "Umar", "Vina", "Winda", "Yudi",
         "Zainal", "Asep", "Ujang", "Cecep", "Dadang", "Euis", "Neneng", "Tatang",
         "Sutrisno", "Suparno", "Sumarni", "Suryani", "Hartini", "Yohanes", "Maria",
         "Stefanus", "Fransiska", "Robert", "Kevin", "Felix", "Vincent", "Michael",
         "Jessica", "Angelina", "Daniel", "Samuel", "Yosua", "Ruth", "Imam", "Ridwan",
         "Sigit", "Hari", "Endang", "Rini", "Lilis", "Erna", "Firman", "Gilang", "Heru"]
MIDDLE = ["", "", "", "", "", "", "", "", "Nur", "Dwi", "Tri", "Eka", "Ayu", "Adi", "Putra",
          "Putri", "Indah", "Sari", "Rizky", "Aditya", "Agung", "Dewi", "Setya", "Wahyu",
          "Kurnia", "Dian", "Budi", "Ratna", "Intan", "Bayu", "Catur", "Panca", "Surya",
          "Cahyo", "Tirta", "Kusuma", "Arya", "Maha", "Fajar", "Rahma", "Ari"]
LAST = ["Santoso", "Wijaya", "Saputra", "Hidayat", "Kusuma", "Pratama", "Nugroho", "Siregar",
        "Nasution", "Lubis", "Harahap", "Simanjuntak", "Sitompul", "Hutapea", "Pangaribuan",
        "Setiawan", "Gunawan", "Susanto", "Halim", "Tanoto", "Salim", "Wibowo", "Purnomo",
        "Kurniawan", "Firmansyah", "Ramadhan", "Permana", "Suryadi", "Hartono", "Sutanto",
        "Rahman", "Hakim", "Syahputra", "Maulana", "Wahyudi", "Prasetyo", "Sulistyo",
        "Utomo", "Handoko", "Sembiring", "Ginting", "Tarigan", "Manurung", "Sinaga",
        "Panjaitan", "Tambunan", "Pohan", "Daulay", "Tanjung", "Marpaung", "Lim", "Tan",
        "Wongso", "Effendi", "Suparman", "Mahendra", "Anggraini", "Lestari", "Rahayu",
        "Puspitasari", "Wulandari", "Suryani", "Fitriani", "Maharani", "Permatasari",
        "Damanik", "Sihombing", "Pardede", "Tampubolon", "Manik", "Batubara", "Rangkuti",
        "Pulungan", "Ritonga", "Dalimunthe", "Pane", "Situmorang", "Napitupulu",
        "Simatupang", "Matondang", "Sugiarto", "Setiadi", "Budiman", "Hendrawan",
        "Kosasih", "Sumantri", "Wiranata", "Darmawan", "Iskandar", "Syahrir", "Pattiasina",
        "Latuconsina", "Rumahorbo", "Mandagi", "Lumowa", "Pangemanan", "Sondakh",
        "Tumbelaka", "Wenas", "Daeng", "Sompa"]

ACCOUNT_KINDS = [("Toko", 30), ("CV", 14), ("PT", 14), ("UD", 8), ("Toko Bangunan", 5),
                 ("Apotek", 4), ("Warung", 5), ("Bengkel", 3), ("Minimarket", 3),
                 ("Koperasi", 2), ("Rumah Makan", 3), ("Klinik", 2), ("Depot", 2),
                 ("Toko Elektronik", 3), ("Grosir", 2)]
NAME_WORDS = ["Makmur", "Jaya", "Sentosa", "Abadi", "Sejahtera", "Maju", "Berkah", "Sumber",
              "Rejeki", "Mandiri", "Lestari", "Sinar", "Harapan", "Mulia", "Agung", "Baru",
              "Utama", "Indah", "Karya", "Bersama", "Cahaya", "Gemilang", "Santoso",
              "Barokah", "Amanah", "Anugerah", "Bintang", "Mitra", "Putra", "Tunggal",
              "Setia", "Raya", "Nusantara", "Mekar", "Subur", "Kencana", "Bahagia", "Lancar",
              "Sukses", "Prima", "Surya", "Mas", "Pelangi", "Samudra", "Timur", "Selatan",
              "Perkasa", "Teknik", "Niaga", "Sakti", "Wangi", "Murni", "Family", "Sehat",
              "Tani", "Motor", "Elektrik", "Plastik", "Kayu", "Besi", "Sembako", "Kurnia"]
PT_SUFFIX = ["Nusantara", "Indonesia", "Perkasa", "Sejahtera", "Mandiri", "Abadi", "Utama",
             "Internasional", "Persada", "Lestari", "Makmur", "Sentosa"]
INDUSTRIES = ["Retail", "Grosir", "Distributor", "Bahan Bangunan", "Elektronik", "Farmasi",
              "Makanan & Minuman", "Otomotif", "Pertanian", "Tekstil", "Kosmetik",
              "Alat Tulis", "Restoran", "Perhotelan", "Logistik", "Kesehatan"]
STREETS = ["Sudirman", "M.H. Thamrin", "Gatot Subroto", "Diponegoro", "Ahmad Yani",
           "Pahlawan", "Merdeka", "Gajah Mada", "Hayam Wuruk", "Pemuda", "Veteran",
           "Imam Bonjol", "Cendrawasih", "Kartini", "Sisingamangaraja", "Asia Afrika",
           "Raya Bogor", "Pattimura", "Hasanuddin", "Teuku Umar", "Cut Nyak Dien",
           "Pangeran Antasari", "Sultan Agung", "Majapahit", "Siliwangi", "Dr. Sutomo",
           "Kaliurang", "Basuki Rahmat", "Pemuda", "Letjen Suprapto", "Gunung Sahari",
           "Mangga Dua", "Pasar Baru", "Kebon Jeruk", "Panglima Polim", "Juanda", "Surapati"]
TAGS = ["grosir", "prioritas", "langganan", "baru", "vip", "kredit", "tunai", "pasar",
        "online", "reseller", "kantor pusat", "cabang"]
ACCOUNT_NOTES = ["Buka jam 8, tutup hari Minggu", "Pemilik biasanya ada sore hari",
                 "Pembayaran tempo 30 hari", "Parkir sempit, bawa motor",
                 "Gudang di belakang toko\nMasuk lewat gang samping",
                 "Minta faktur pajak setiap order", "Pelanggan sejak 2019",
                 "Sering order menjelang Lebaran", "Harga sensitif; bandingkan dengan kompetitor",
                 "Kontak utama: pemilik\nCadangan: kepala gudang"]
TITLES = ["Pemilik", "Manajer Toko", "Kepala Gudang", "Bagian Pembelian", "Direktur",
          "Staf Admin", "Kasir", "Supervisor", "Apoteker", "Manajer Operasional",
          "Direktur Utama", "Staf Keuangan", "Kepala Cabang", "Purchasing"]
MAIL_DOMAINS = ["gmail.com", "gmail.com", "gmail.com", "yahoo.co.id", "yahoo.com",
                "outlook.com", "hotmail.com", "ymail.com"]
PRODUCTS = [("Kulkas", "unit", 2500000, 8000000), ("AC split", "unit", 3000000, 7000000),
            ("Semen", "sak", 55000, 75000), ("Cat tembok", "kaleng", 90000, 450000),
            ("Genteng", "buah", 3500, 12000), ("Oli mesin", "liter", 45000, 90000),
            ("Ban motor", "pcs", 180000, 450000), ("Laptop", "unit", 5000000, 15000000),
            ("Printer", "unit", 1500000, 4500000), ("Obat generik", "strip", 5000, 25000),
            ("Pupuk urea", "karung", 120000, 300000), ("Beras premium", "karung", 300000, 700000),
            ("Minyak goreng", "karton", 180000, 260000), ("Gula pasir", "karung", 600000, 800000),
            ("Air mineral", "karton", 35000, 60000), ("Mi instan", "karton", 100000, 130000),
            ("Besi beton", "batang", 60000, 140000), ("Keramik lantai", "dus", 55000, 180000),
            ("Pipa PVC", "batang", 25000, 120000), ("Kabel listrik", "rol", 250000, 900000),
            ("Sabun cuci", "karton", 90000, 200000), ("Kopi bubuk", "karton", 200000, 400000),
            ("Televisi LED", "unit", 2000000, 9000000), ("Mesin cuci", "unit", 2200000, 6000000),
            ("Seragam kerja", "stel", 120000, 350000)]
STAGES = [("Prospect", 30), ("Qualified", 20), ("Proposal", 15), ("Negotiation", 10),
          ("Won", 15), ("Lost", 10)]
LOST_REASONS = ["harga", "kompetitor", "anggaran ditunda", "tidak ada respon",
                "stok tidak tersedia", "pindah pemasok"]
OUTCOMES = {
    "visit": ["Minta penawaran", "Order 20 karton", "Tidak ada di tempat", "Cek stok bersama",
              "Tertarik produk baru", "Negosiasi harga", "Tagih pembayaran", "Pasang materi promosi",
              "Komplain pengiriman", "Sudah bayar"],
    "call": ["Follow up penawaran", "Konfirmasi order", "Tidak diangkat", "Minta dihubungi lagi",
             "Jadwalkan kunjungan", "Tanya status pengiriman", "Info harga baru"],
    "meeting": ["Presentasi produk", "Negosiasi kontrak", "Rapat evaluasi bulanan",
                "Tanda tangan PO", "Diskusi program diskon"],
    "email": ["Kirim penawaran", "Kirim katalog", "Kirim faktur", "Balas pertanyaan harga",
              "Konfirmasi jadwal"],
}
ACTIVITY_NOTES = ["Pemilik minta diskon 5% untuk order di atas 50 karton",
                  "Stok menipis, perkirakan order minggu depan",
                  "Kompetitor menawarkan harga lebih murah",
                  "Pembayaran lewat transfer BCA",
                  "Minta contoh produk dulu\nAkan diputuskan akhir bulan",
                  "Gudang penuh menjelang Lebaran", "Barang rusak 3 dus, minta retur",
                  "Bertemu kepala gudang, pemilik sedang ke luar kota"]
KINDS = [("visit", 50), ("call", 30), ("meeting", 10), ("email", 10)]


def weighted(rng, items):
    """items: [(value, weight)] -> a cumulative table for rng.choices."""
    vals = [v for v, _ in items]
    cum, total = [], 0
    for _, w in items:
        total += w
        cum.append(total)
    return lambda: rng.choices(vals, cum_weights=cum)[0]


def mobile(rng, style=None):
    prefix = rng.choice(MOBILE_PREFIXES)
    rest = "".join(rng.choice("0123456789") for _ in range(rng.choice((7, 8, 8))))
    style = rng.randrange(6) if style is None else style
    if style == 0:
        return f"{prefix}-{rest[:4]}-{rest[4:]}"
    if style == 1:
        return f"{prefix} {rest[:4]} {rest[4:]}"
    if style == 2:
        return f"+62 {prefix[1:]}-{rest[:4]}-{rest[4:]}"
    if style == 3:
        return f"62{prefix[1:]}{rest}"
    return prefix + rest


def landline(rng, area):
    n = "".join(rng.choice("0123456789") for _ in range(7 if len(area) == 3 else 6))
    return f"({area}) {n[0]}{n[1:3]}-{n[3:]}" if rng.random() < 0.5 else f"{area}-{n}"


def slug(text):
    return "".join(c for c in text.lower() if c.isalnum())


def fmt_deg(x):
    return f"{x:.6f}"


def generate(out, scale, seed):
    rng = random.Random(seed)
    n = {k: max(1, round(v * scale)) for k, v in FULL.items()}
    os.makedirs(out, exist_ok=True)
    city_pick = weighted(rng, [(c, c[4]) for c in CITIES])
    kind_pick = weighted(rng, ACCOUNT_KINDS)
    stage_pick = weighted(rng, STAGES)
    act_pick = weighted(rng, KINDS)

    # ---- accounts -------------------------------------------------------------
    accounts = []           # (name, city tuple, lat, lon)
    used = set()
    with open(os.path.join(out, "accounts.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "industry", "phone", "email", "address", "city", "region",
                    "lat", "lon", "tags", "notes"])
        for i in range(n["accounts"]):
            kind = kind_pick()
            city = city_pick()
            for attempt in range(100):
                words = rng.sample(NAME_WORDS, rng.choice((1, 2, 2, 3)))
                if kind == "PT":
                    name = f"PT {' '.join(words)} {rng.choice(PT_SUFFIX)}"
                elif kind in ("Warung", "Toko") and rng.random() < 0.15:
                    name = f"{kind} {rng.choice(('Pak', 'Bu', 'Mas', 'Cik', 'Koh'))} {rng.choice(FIRST)}"
                else:
                    name = f"{kind} {' '.join(words)}"
                if attempt > 3:
                    name = f"{name} {rng.randrange(2, 99)}"
                elif attempt > 1:
                    name = f"{name} {city[0]}"
                if name.lower() not in used:
                    break
            else:
                name = f"{name} {i}"
            used.add(name.lower())
            lat = city[2] + rng.gauss(0, 0.035)
            lon = city[3] + rng.gauss(0, 0.035)
            accounts.append((name, city, lat, lon))
            phone = landline(rng, city[5]) if rng.random() < 0.5 else mobile(rng)
            email = ""
            if rng.random() < 0.6:
                dom = rng.choice(("co.id", "com", "id", "net")) if kind in ("PT", "CV") else None
                email = (f"info@{slug(name)[:24]}.{dom}" if dom else
                         f"{slug(name)[:20]}{rng.randrange(10, 99)}@{rng.choice(MAIL_DOMAINS)}")
            address = f"Jl. {rng.choice(STREETS)} No. {rng.randrange(1, 250)}"
            if rng.random() < 0.3:
                address += f", RT {rng.randrange(1, 15):02d}/RW {rng.randrange(1, 12):02d}"
            tags = ",".join(rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3))))
            notes = rng.choice(ACCOUNT_NOTES) if rng.random() < 0.3 else ""
            w.writerow([name, rng.choice(INDUSTRIES), phone, email, address, city[0], city[1],
                        fmt_deg(lat), fmt_deg(lon), tags, notes])

    # ---- contacts -------------------------------------------------------------
    # Each customer gets at least one contact while there are enough; the
    # rest go to customers at random (a few big customers have many).
    contacts_of = [[] for _ in accounts]
    used = set()
    with open(os.path.join(out, "contacts.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "account", "title", "phone", "email", "city", "notes"])
        for i in range(n["contacts"]):
            if i < len(accounts):
                ai = i
            elif rng.random() < 0.15:       # the big customers: 2% of them
                ai = rng.randrange(max(1, len(accounts) // 50))
            else:
                ai = rng.randrange(len(accounts))
            acc = accounts[ai]
            for _ in range(1000):
                first, mid, last = rng.choice(FIRST), rng.choice(MIDDLE), rng.choice(LAST)
                name = " ".join(p for p in (first, mid, last) if p)
                if name.lower() not in used:
                    break
            else:
                sys.exit("gen_dataset: ran out of unique contact names; extend the name lists")
            used.add(name.lower())
            contacts_of[ai].append(name)
            email = ""
            if rng.random() < 0.7:
                email = (f"{slug(first)}.{slug(last)}{rng.randrange(1, 999)}@"
                         f"{rng.choice(MAIL_DOMAINS)}")
            notes = ""
            if rng.random() < 0.1:
                notes = rng.choice(["Lebih suka dihubungi lewat WhatsApp",
                                    "Hanya bisa ditemui hari kerja",
                                    "Keputusan pembelian ada di pemilik",
                                    "Nomor kedua: " + mobile(rng, 0)])
            w.writerow([name, acc[0], rng.choice(TITLES), mobile(rng), email, acc[1][0], notes])

    # ---- deals --------------------------------------------------------------------
    with open(os.path.join(out, "deals.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["title", "account", "contact", "amount", "currency", "stage", "probability",
                    "close", "lost_reason", "notes"])
        for i in range(n["deals"]):
            ai = rng.randrange(len(accounts))
            acc = accounts[ai]
            prod, unit, lo, hi = rng.choice(PRODUCTS)
            qty = rng.choice((5, 10, 12, 20, 25, 30, 50, 75, 100, 150, 200, 500, 1000))
            amount = round(qty * rng.randrange(lo, hi) / 1000) * 1000
            stage = stage_pick()
            contact = rng.choice(contacts_of[ai]) if contacts_of[ai] and rng.random() < 0.7 else ""
            prob = str(rng.choice((10, 20, 30, 40, 60, 70, 80, 90))) if rng.random() < 0.2 else ""
            close = f"{rng.choice((2025, 2026))}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            lost = rng.choice(LOST_REASONS) if stage == "Lost" else ""
            notes = rng.choice(["Termasuk ongkos kirim", "Minta tempo 60 hari",
                                "Pengiriman bertahap 3 kali", "Harga khusus proyek"]) \
                if rng.random() < 0.2 else ""
            w.writerow([f"{prod} {qty} {unit}", acc[0], contact, amount, "IDR", stage, prob,
                        close, lost, notes])

    # ---- activities ---------------------------------------------------------------
    with open(os.path.join(out, "activities.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "account", "contact", "at", "lat", "lon", "outcome", "notes"])
        for i in range(n["activities"]):
            ai = rng.randrange(len(accounts))
            name, city, alat, alon = accounts[ai]
            kind = act_pick()
            contact = rng.choice(contacts_of[ai]) if contacts_of[ai] and rng.random() < 0.7 else ""
            day = rng.randrange(1, 29)
            at = (f"{rng.choice((2025, 2026))}-{rng.randrange(1, 13):02d}-{day:02d}"
                  f"T{rng.randrange(8, 18):02d}:{rng.randrange(0, 60):02d}:00+{city[6]:02d}:00")
            lat = lon = ""
            if kind == "visit":
                lat = fmt_deg(alat + rng.gauss(0, 0.0003))
                lon = fmt_deg(alon + rng.gauss(0, 0.0003))
            notes = rng.choice(ACTIVITY_NOTES) if rng.random() < 0.35 else ""
            w.writerow([kind, name, contact, at, lat, lon, rng.choice(OUTCOMES[kind]), notes])
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1)")
    ap.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"),
                    help="output directory (default bench/data, git-ignored)")
    a = ap.parse_args()
    if not 0 < a.scale <= 10:
        ap.error("--scale must be in (0, 10]")
    n = generate(a.out, a.scale, a.seed)
    print("wrote " + ", ".join(f"{v} {k}" for k, v in n.items()) + f" to {a.out}")


if __name__ == "__main__":
    main()
