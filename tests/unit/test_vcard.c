/*
 * test_vcard.c — unit tests of the vCard parser and writer (sync/src/vcard.c).
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/vcard.h"

static int msg_has(const char *needle)
{
	if (strstr(rl_error_message(), needle))
		return 1;
	fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", rl_error_message(), needle);
	return 0;
}

static int parse_str(rl_vcard **cards, size_t *n, const char *s)
{
	return rl_vcard_parse(cards, n, s, strlen(s));
}

/* An iPhone / Android style 3.0 export: groups, folding, escapes, a photo. */
static const char phone_export[] =
	"BEGIN:VCARD\r\n"                                                       /* 1 */
	"VERSION:3.0\r\n"                                                       /* 2 */
	"PRODID:-//Apple Inc.//iPhone OS 17.1//EN\r\n"                          /* 3 */
	"N:Santoso;Budi;Hartono;Bpk.;S.E.\r\n"                                  /* 4 */
	"FN:Budi Santoso\r\n"                                                   /* 5 */
	"ORG:PT Maju Jaya\\, Tbk;Penjualan\r\n"                                 /* 6 */
	"TITLE:Area Sales Manager\r\n"                                          /* 7 */
	"item1.TEL;type=CELL;type=VOICE;type=pref:+62 812-3456-7890\r\n"        /* 8 */
	"item1.X-ABLabel:_$!<Mobile>!$_\r\n"                                    /* 9 */
	"TEL;TYPE=\"work,voice\":(022) 423-1234\r\n"                            /* 10 */
	"item2.EMAIL;type=INTERNET;type=pref:budi.santoso@majujaya.co.i\r\n"    /* 11 */
	" d\r\n"                                                                /* 12 */
	"item3.ADR;type=WORK;type=pref:;;Jl. Asia Afrika No. 8;Bandung;Jawa Ba\r\n" /* 13 */
	"\trat;40111;Indonesia\r\n"                                             /* 14 */
	"item3.X-ABADR:id\r\n"                                                  /* 15 */
	"NOTE:Suka dihubungi lewat WhatsApp\\, bukan telepon.\\nKunjungan: Sela\r\n" /* 16 */
	" sa\\; pagi.\r\n"                                                      /* 17 */
	"PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEU\r\n" /* 18 */
	" AAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAA\r\n" /* 19 */
	" ANMtAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n" /* 20 */
	" AAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0\r\n" /* 21 */
	" UAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjA==\r\n"  /* 22 */
	"X-ANDROID-CUSTOM:vnd.android.cursor.item/nickname;Budi;1;;;;;;;;;;;;;\r\n" /* 23 */
	"CATEGORIES:Pelanggan,Bandung\r\n"                                      /* 24 */
	"REV:2024-03-01T08:15:00Z\r\n"                                          /* 25 */
	"END:VCARD\r\n"                                                         /* 26 */
	"\r\n"                                                                  /* 27 */
	"BEGIN:VCARD\n"                                                         /* 28 */
	"version:3.0\n"                                                         /* 29 */
	"n:Rahayu;Siti;;;\n"                                                    /* 30 */
	"email;type=INTERNET:siti@example.co.id\n"                              /* 31 */
	"adr;type=HOME:;;;;;;Indonesia\n"                                       /* 32 */
	"adr;type=WORK:;;;Cimahi;;;\n"                                          /* 33 */
	"END:VCARD\n";                                                          /* 34 */

static void test_phone_export(void)
{
	rl_vcard *c = NULL;
	size_t n = 0;

	CHECK_EQ_INT(parse_str(&c, &n, phone_export), RL_OK);
	CHECK_EQ_INT(n, 2);
	if (n != 2)
		return;
	CHECK_EQ_INT(c[0].line, 1);
	CHECK_EQ_STR(c[0].fn, "Budi Santoso");
	CHECK_EQ_STR(c[0].org, "PT Maju Jaya, Tbk");
	CHECK_EQ_STR(c[0].title, "Area Sales Manager");
	CHECK_EQ_INT(c[0].ntel, 2);
	CHECK_EQ_STR(c[0].tel[0], "+62 812-3456-7890");
	CHECK_EQ_STR(c[0].tel[1], "(022) 423-1234");
	CHECK_EQ_INT(c[0].nemail, 1);
	CHECK_EQ_STR(c[0].email[0], "budi.santoso@majujaya.co.id");
	CHECK_EQ_STR(c[0].city, "Bandung");
	CHECK_EQ_STR(c[0].note, "Suka dihubungi lewat WhatsApp, bukan telepon.\n"
				"Kunjungan: Selasa; pagi.");
	CHECK(c[0].uid == NULL);

	CHECK_EQ_INT(c[1].line, 28);
	CHECK_EQ_STR(c[1].fn, "Siti Rahayu");  /* built from N */
	CHECK(c[1].org == NULL);
	CHECK(c[1].title == NULL);
	CHECK(c[1].note == NULL);
	CHECK_EQ_INT(c[1].ntel, 0);
	CHECK_EQ_INT(c[1].nemail, 1);
	CHECK_EQ_STR(c[1].city, "Cimahi");     /* first ADR with a locality */
	rl_vcard_free_all(c, n);
}

static void test_v4(void)
{
	const char *in =
		"BEGIN:VCARD\r\n"
		"VERSION:4.0\r\n"
		"FN:Siti Rahayu\r\n"
		"N:Rahayu;Siti;;;\r\n"
		"UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n"
		"TEL;VALUE=uri;TYPE=\"voice,cell\";PREF=1:tel:+62-811-2233-4455\r\n"
		"TEL;VALUE=uri;TYPE=work:TEL:+62-22-7654321;ext=102\r\n"
		"EMAIL;TYPE=work:siti@example.co.id\r\n"
		"ADR;TYPE=work;LABEL=\"Jl. Braga No. 1\\n40111 Bandung; Jawa Barat: ID\":;;Jl. Braga No. 1;Bandung;;40111;Indonesia\r\n"
		"ORG:CV Sumber Rejeki\r\n"
		"TEL:tel: 0812 999\r\n"         /* space after the scheme */
		"END:VCARD\r\n";
	rl_vcard *c = NULL;
	size_t n = 0;

	CHECK_EQ_INT(parse_str(&c, &n, in), RL_OK);
	CHECK_EQ_INT(n, 1);
	if (n != 1)
		return;
	CHECK_EQ_STR(c[0].fn, "Siti Rahayu");
	CHECK_EQ_STR(c[0].uid, "4fbe8971-0bc3-424c-9c26-36c3e1eff6b1");
	CHECK_EQ_INT(c[0].ntel, 3);
	CHECK_EQ_STR(c[0].tel[0], "+62-811-2233-4455");
	CHECK_EQ_STR(c[0].tel[1], "+62-22-7654321;ext=102");
	CHECK_EQ_STR(c[0].tel[2], "0812 999");
	CHECK_EQ_STR(c[0].email[0], "siti@example.co.id");
	CHECK_EQ_STR(c[0].city, "Bandung");
	CHECK_EQ_STR(c[0].org, "CV Sumber Rejeki");
	rl_vcard_free_all(c, n);
}

static void test_values(void)
{
	const char *in =
		"BEGIN:VCARD\n"
		"VERSION:3.0\n"
		"FN:  Agus  \n"
		"FN:Second FN is ignored\n"
		"NOTE:a\\\\b\\,c\\;d\\ne\\Nf\\xg\\\n"
		"TEL:1\nTEL:2\nTEL:3\nTEL:4\nTEL:5\nTEL:6\nTEL:7\nTEL:8\nTEL:9\nTEL:10\n"
		"TEL:\n"
		"EMAIL:a@x.id\n"
		"X-FOLDED-UTF8:Caf\xC3\n"
		" \xA9\n"
		"item9.X-EMPTY;X-FLAG:\n"
		"END:VCARD\n";
	rl_vcard *c = NULL;
	size_t n = 0;

	CHECK_EQ_INT(parse_str(&c, &n, in), RL_OK);
	CHECK_EQ_INT(n, 1);
	if (n != 1)
		return;
	CHECK_EQ_STR(c[0].fn, "Agus");
	CHECK_EQ_STR(c[0].note, "a\\b,c;d\ne\nfxg\\");
	CHECK_EQ_INT(c[0].ntel, 10);    /* every number kept; the empty TEL is none */
	CHECK_EQ_STR(c[0].tel[0], "1");
	CHECK_EQ_STR(c[0].tel[7], "8");
	CHECK_EQ_STR(c[0].tel[9], "10");
	CHECK_EQ_INT(c[0].nemail, 1);
	rl_vcard_free_all(c, n);

	/* empty input and blank lines only: no cards, no error */
	CHECK_EQ_INT(parse_str(&c, &n, ""), RL_OK);
	CHECK_EQ_INT(n, 0);
	CHECK(c == NULL);
	CHECK_EQ_INT(parse_str(&c, &n, "\xEF\xBB\xBF\r\n\r\n"), RL_OK);
	CHECK_EQ_INT(n, 0);
}

/* Parse must fail with code and a message holding want; nothing returned. */
static void expect_error(const char *in, int code, const char *want)
{
	static char sentinel;
	rl_vcard *c = (rl_vcard *)(void *)&sentinel;
	size_t n = 99;

	CHECK_EQ_INT(parse_str(&c, &n, in), code);
	CHECK(c == NULL);
	CHECK_EQ_INT(n, 0);
	CHECK(msg_has(want));
}

static void test_errors(void)
{
	expect_error("BEGIN:VCARD\r\n"
		     "VERSION:2.1\r\n"
		     "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=42=75=64=69;;;\r\n"
		     "END:VCARD\r\n",
		     RL_EINVALID, "line 2: vCard 2.1 is not supported");
	expect_error("BEGIN:VCARD\n"
		     "VERSION:3.0\n"
		     "FN:Ani\n"
		     "NOTE;ENCODING=QUOTED-PRINTABLE:Jl. Merdeka =\n"
		     "END:VCARD\n",
		     RL_EINVALID, "line 4: QUOTED-PRINTABLE");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nNOTE;quoted-printable:x\nEND:VCARD\n",
		     RL_EINVALID, "line 4: QUOTED-PRINTABLE");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN;CHARSET=ISO-8859-1:Ani\nEND:VCARD\n",
		     RL_EINVALID, "line 3: CHARSET=ISO-8859-1 is not supported");
	expect_error("BEGIN:VCARD\nVERSION:5.0\nFN:Ani\nEND:VCARD\n",
		     RL_EINVALID, "line 2: unsupported vCard VERSION '5.0'");

	/* first card fine, the second never ends */
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nEND:VCARD\n"
		     "BEGIN:VCARD\nVERSION:3.0\nFN:Budi\n",
		     RL_EINVALID, "line 5: BEGIN:VCARD has no END:VCARD before the end of the input (line 7)");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\n"
		     "BEGIN:VCARD\nVERSION:3.0\nFN:Budi\nEND:VCARD\n",
		     RL_EINVALID, "line 4: BEGIN:VCARD inside the card begun on line 1");

	/* line numbers count physical lines, past folded ones */
	expect_error("BEGIN:VCARD\r\n"
		     "VERSION:3.0\r\n"
		     "FN:Ani\r\n"
		     "NOTE:one\r\n"
		     " two\r\n"
		     " three\r\n"
		     "this is not a property\r\n"
		     "END:VCARD\r\n",
		     RL_EINVALID, "line 7: missing ':' in \"this is not a property\"");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nX BAD:1\nEND:VCARD\n",
		     RL_EINVALID, "line 4: bad property name in \"X BAD:1\"");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nTEL;=x:1\nEND:VCARD\n",
		     RL_EINVALID, "line 4: bad parameter");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nTEL;TYPE=\"cell:1\nEND:VCARD\n",
		     RL_EINVALID, "line 4: unterminated quoted parameter value");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nTEL;TYPE=ce\"ll:1\nEND:VCARD\n",
		     RL_EINVALID, "line 4: bad parameter");
	expect_error("FN:Ani\n", RL_EINVALID, "line 1: \"FN:Ani\" outside BEGIN:VCARD");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nEND:VCARD\nEND:VCARD\n",
		     RL_EINVALID, "line 5: \"END:VCARD\" outside");
	expect_error("BEGIN:VCALENDAR\n", RL_EINVALID, "line 1: unexpected \"BEGIN:VCALENDAR\"");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nORG:Toko\nEND:VCARD\n",
		     RL_EINVALID, "line 1: card has neither FN nor a name in N");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nN:;;;;\nEND:VCARD\n",
		     RL_EINVALID, "line 1: card has neither FN nor a name in N");
	expect_error("BEGIN:VCARD\nFN:Ani\nEND:VCARD\n",
		     RL_EINVALID, "line 1: card has no VERSION");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:An\xC0\xA9\nEND:VCARD\n",
		     RL_EINVALID, "line 3: invalid UTF-8 (byte 0xC0)");
	expect_error("BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nNOTE:x\n \xED\xA0\x80\nEND:VCARD\n",
		     RL_EINVALID, "line 4: invalid UTF-8 (byte 0xED)");
	{
		static const char nul[] = "BEGIN:VCARD\nVERSION:3.0\nFN:A\0ni\nEND:VCARD\n";
		rl_vcard *c;
		size_t n;

		CHECK_EQ_INT(rl_vcard_parse(&c, &n, nul, sizeof(nul) - 1), RL_EINVALID);
		CHECK(msg_has("line 3: NUL byte"));
	}
}

static void test_limits(void)
{
	/* a photo folded over 20,000 lines: > RL_MAX_VCARD_LINE_BYTES unfolded */
	const char *head = "BEGIN:VCARD\nVERSION:3.0\nFN:Ani\nPHOTO;ENCODING=b:";
	size_t nlines = 20000, width = 60;
	size_t len = strlen(head) + nlines * (width + 2) + 12;
	char *in = malloc(len + 1), *p;
	rl_vcard *c;
	size_t n, i;

	if (!in)
		abort();
	p = in;
	memcpy(p, head, strlen(head));
	p += strlen(head);
	for (i = 0; i < nlines; i++) {
		if (i > 0)
			*p++ = ' ';
		memset(p, 'A', width);
		p += width;
		*p++ = '\n';
	}
	memcpy(p, "END:VCARD\n", 10);
	p += 10;
	len = (size_t)(p - in);
	CHECK_EQ_INT(rl_vcard_parse(&c, &n, in, len), RL_ETOOBIG);
	CHECK(msg_has("line 4: unfolded line longer than 1048576 bytes"));

	/* the same photo under the limit is skipped */
	nlines = 1000;
	p = in;
	memcpy(p, head, strlen(head));
	p += strlen(head);
	for (i = 0; i < nlines; i++) {
		if (i > 0)
			*p++ = ' ';
		memset(p, 'A', width);
		p += width;
		*p++ = '\n';
	}
	memcpy(p, "END:VCARD\n", 10);
	p += 10;
	CHECK_EQ_INT(rl_vcard_parse(&c, &n, in, (size_t)(p - in)), RL_OK);
	CHECK_EQ_INT(n, 1);
	rl_vcard_free_all(c, n);
	free(in);

	in = calloc(1, (size_t)RL_MAX_VCARD_FILE_BYTES + 1);
	if (!in)
		abort();
	CHECK_EQ_INT(rl_vcard_parse(&c, &n, in, (size_t)RL_MAX_VCARD_FILE_BYTES + 1), RL_ETOOBIG);
	free(in);
}

/* Every TEL and EMAIL is kept, in order, up to RL_MAX_VCARD_VALUES of a
 * kind; one more refuses the card naming its line (never a silent cut). */
static void test_many_values(void)
{
	size_t cap = 64 + (size_t)(RL_MAX_VCARD_VALUES + 1) * 32, len, i, n = 0;
	char *in = malloc(cap), want[32];
	rl_vcard *c = NULL;

	if (!in)
		abort();
	len = (size_t)snprintf(in, cap, "BEGIN:VCARD\nVERSION:4.0\nFN:Ani\n");
	for (i = 0; i < 20; i++)
		len += (size_t)snprintf(in + len, cap - len, "TEL:tel:+6281200%04zu\nEMAIL:a%zu@b.id\n",
					i, i);
	len += (size_t)snprintf(in + len, cap - len, "END:VCARD\n");
	CHECK_EQ_INT(rl_vcard_parse(&c, &n, in, len), RL_OK);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(c[0].ntel, 20);
		CHECK_EQ_INT(c[0].nemail, 20);
		for (i = 0; i < 20 && i < c[0].ntel && i < c[0].nemail; i++) {
			snprintf(want, sizeof(want), "+6281200%04zu", i);
			CHECK_EQ_STR(c[0].tel[i], want);
			snprintf(want, sizeof(want), "a%zu@b.id", i);
			CHECK_EQ_STR(c[0].email[i], want);
		}
	}
	rl_vcard_free_all(c, n);

	/* exactly the limit of e-mails: kept; one more: refused, naming lines */
	len = (size_t)snprintf(in, cap, "BEGIN:VCARD\nVERSION:3.0\nFN:Ani\n");
	for (i = 0; i < (size_t)RL_MAX_VCARD_VALUES; i++)
		len += (size_t)snprintf(in + len, cap - len, "EMAIL:a%zu@b.id\n", i);
	CHECK_EQ_INT(rl_vcard_parse(&c, &n, in, (size_t)snprintf(in + len, cap - len,
				    "END:VCARD\n") + len), RL_OK);
	CHECK_EQ_INT(n, 1);
	if (n == 1)
		CHECK_EQ_INT(c[0].nemail, RL_MAX_VCARD_VALUES);
	rl_vcard_free_all(c, n);
	len += (size_t)snprintf(in + len, cap - len, "EMAIL:last@b.id\nEND:VCARD\n");
	CHECK_EQ_INT(rl_vcard_parse(&c, &n, in, len), RL_ETOOBIG);
	snprintf(want, sizeof(want), "line %d:", 3 + RL_MAX_VCARD_VALUES + 1);
	CHECK(msg_has(want));
	CHECK(msg_has("the card at line 1 has more than"));
	free(in);
}

static void test_write_exact(void)
{
	char *tel[] = { "+6281234567890", "022 423 1234" };
	char *email[] = { "ani@example.id" };
	rl_vcard card;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	memset(&card, 0, sizeof(card));
	card.fn = "Ani Wijaya, S.E.";
	card.org = "Toko; Sejahtera";
	card.tel = tel;
	card.ntel = 2;
	card.email = email;
	card.nemail = 1;
	card.city = "Bandung";
	card.note = "a\\b\r\nc";
	card.uid = "abc-123";

	f = open_memstream(&buf, &len);
	if (!f)
		abort();
	CHECK_EQ_INT(rl_vcard_write(f, &card, 3), RL_OK);
	CHECK_EQ_INT(rl_vcard_write(f, &card, 4), RL_OK);
	CHECK_EQ_INT(rl_vcard_write(f, &card, 2), RL_EINVALID);
	fclose(f);
	CHECK_EQ_STR(buf,
		     "BEGIN:VCARD\r\n"
		     "VERSION:3.0\r\n"
		     "FN:Ani Wijaya\\, S.E.\r\n"
		     "N:S.E.;Ani Wijaya\\,;;;\r\n"
		     "ORG:Toko\\; Sejahtera\r\n"
		     "TEL;TYPE=CELL:+6281234567890\r\n"
		     "TEL;TYPE=CELL:022 423 1234\r\n"
		     "EMAIL:ani@example.id\r\n"
		     "ADR:;;;Bandung;;;\r\n"
		     "NOTE:a\\\\b\\nc\r\n"
		     "UID:abc-123\r\n"
		     "END:VCARD\r\n"
		     "BEGIN:VCARD\r\n"
		     "VERSION:4.0\r\n"
		     "FN:Ani Wijaya\\, S.E.\r\n"
		     "N:S.E.;Ani Wijaya\\,;;;\r\n"
		     "ORG:Toko\\; Sejahtera\r\n"
		     "TEL;VALUE=uri;TYPE=cell:tel:+6281234567890\r\n"
		     "TEL;TYPE=cell:022 423 1234\r\n"
		     "EMAIL:ani@example.id\r\n"
		     "ADR:;;;Bandung;;;\r\n"
		     "NOTE:a\\\\b\\nc\r\n"
		     "UID:abc-123\r\n"
		     "END:VCARD\r\n");
	free(buf);

	/* a mononym is a given name */
	card.fn = "Sukarno";
	card.org = card.city = card.note = card.uid = NULL;
	card.ntel = card.nemail = 0;
	buf = NULL;
	f = open_memstream(&buf, &len);
	if (!f)
		abort();
	CHECK_EQ_INT(rl_vcard_write(f, &card, 3), RL_OK);
	fclose(f);
	CHECK_EQ_STR(buf, "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Sukarno\r\nN:;Sukarno;;;\r\nEND:VCARD\r\n");
	free(buf);

	card.fn = NULL;
	f = fopen("/dev/null", "w");
	if (!f)
		abort();
	CHECK_EQ_INT(rl_vcard_write(f, &card, 3), RL_EINVALID);
	fclose(f);
}

/* Each CRLF-terminated physical line: <= 75 octets, valid UTF-8 on its
 * own (so no sequence was cut). Returns how many lines were folded short
 * of 75 octets to keep a sequence whole. */
static int check_folding(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	int short_folds = 0;

	while (p < end) {
		const char *e = strstr(p, "\r\n");
		size_t n, i;

		CHECK(e != NULL);
		if (!e)
			break;
		n = (size_t)(e - p);
		CHECK(n <= 75);
		/* a line followed by a continuation but shorter than allowed */
		if (e[2] == ' ' && n < 75)
			short_folds++;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			size_t k, need = c < 0x80 ? 0 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;

			CHECK(c < 0x80 || c >= 0xC2);
			CHECK(i + need < n);
			for (k = 1; k <= need && i + k < n; k++)
				CHECK(((unsigned char)p[i + k] & 0xC0) == 0x80);
			i += need;
		}
		p = e + 2;
	}
	return short_folds;
}

static void test_round_trip(void)
{
	/* 3-byte "—" right after "NOTE:" puts the first 75-octet boundary
	 * inside a character; the mix of 2-, 3- and 4-byte characters does
	 * the same further on */
	char note[2048];
	char *tel[] = { "+6281234567890", "+62 22 4231234" };
	char *email[] = { "budi@majujaya.co.id", "b.santoso@example.com" };
	rl_vcard card;
	int v;

	snprintf(note, sizeof(note), "%s",
		 "——— Catatan kunjungan: Bandung — Jl. Asia Afrika ñ, lantai 2; "
		 "pemilik toko minta harga grosir\\diskon 5%.\n"
		 "Baris kedua: 日本語のテキスト 😀😀😀 ñññññññññññññññññññññ "
		 "ééééééééééééééééééééééééééééé — ——— ———————————————— 终。");
	memset(&card, 0, sizeof(card));
	card.fn = "Budi Santoso";
	card.org = "PT Maju Jaya, Tbk";
	card.title = "Area Manager; Jawa Barat";
	card.note = note;
	card.city = "Bandung";
	card.uid = "9b2f7c1e-4d3a-4b8e-9f21-0c6d5e4a3b21";
	card.tel = tel;
	card.ntel = 2;
	card.email = email;
	card.nemail = 2;

	for (v = 3; v <= 4; v++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		rl_vcard *c = NULL;
		size_t n = 0;

		if (!f)
			abort();
		CHECK_EQ_INT(rl_vcard_write(f, &card, v), RL_OK);
		fclose(f);
		CHECK(check_folding(buf, len) >= 3);
		CHECK(strstr(buf, v == 3 ? "\r\nVERSION:3.0\r\n" : "\r\nVERSION:4.0\r\n") != NULL);
		CHECK(strstr(buf, v == 3 ? "\r\nTEL;TYPE=CELL:+6281234567890\r\n"
				: "\r\nTEL;VALUE=uri;TYPE=cell:tel:+6281234567890\r\n") != NULL);
		CHECK(strstr(buf, "\r\nN:Santoso;Budi;;;\r\n") != NULL);

		CHECK_EQ_INT(rl_vcard_parse(&c, &n, buf, len), RL_OK);
		CHECK_EQ_INT(n, 1);
		if (n == 1) {
			CHECK_EQ_STR(c[0].fn, card.fn);
			CHECK_EQ_STR(c[0].org, card.org);
			CHECK_EQ_STR(c[0].title, card.title);
			CHECK_EQ_STR(c[0].note, card.note);
			CHECK_EQ_STR(c[0].city, card.city);
			CHECK_EQ_STR(c[0].uid, card.uid);
			CHECK_EQ_INT(c[0].ntel, 2);
			CHECK_EQ_STR(c[0].tel[0], tel[0]);
			CHECK_EQ_STR(c[0].tel[1], tel[1]);
			CHECK_EQ_INT(c[0].nemail, 2);
			CHECK_EQ_STR(c[0].email[0], email[0]);
			CHECK_EQ_STR(c[0].email[1], email[1]);
			CHECK_EQ_INT(c[0].line, 1);
		}
		rl_vcard_free_all(c, n);
		free(buf);
	}
}

int main(void)
{
	test_phone_export();
	test_v4();
	test_values();
	test_errors();
	test_limits();
	test_many_values();
	test_write_exact();
	test_round_trip();
	rl_vcard_free_all(NULL, 0);
	CHECK_DONE();
}
