/*
 * test_csv.c — unit tests of the CSV reader and writer (sync/src/csv.c).
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relasi/csv.h"
#include "relasi/error.h"
#include "relasi/limits.h"

static rl_csv_reader *open_str(const char *s, int delim)
{
	rl_csv_reader *r = NULL;
	int rc = rl_csv_open_mem(&r, s, strlen(s), delim);

	CHECK_EQ_INT(rc, RL_OK);
	return r;
}

static int msg_has(const char *needle)
{
	return strstr(rl_error_message(), needle) != NULL;
}

/* Field i of the last record, or NULL (a failed check, not a crash) when
 * the reader returned fewer fields or none. */
static const char *fld(char **f, size_t n, size_t i)
{
	return f && i < n ? f[i] : NULL;
}

static void test_quoting(void)
{
	const char *in =
		"name,note,city\n"
		"\"Budi, S.\",\"line1\nline2\",Bandung\n"
		"\"say \"\"hi\"\"\",  spaced  , \"q\" \n";
	rl_csv_reader *r = open_str(in, 0);
	char **f;
	size_t n;
	long line;

	CHECK_EQ_INT(rl_csv_delimiter(r), ',');
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(line, 1);
	CHECK_EQ_STR(fld(f, n, 0), "name");
	CHECK_EQ_STR(fld(f, n, 2), "city");

	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(line, 2);
	CHECK_EQ_STR(fld(f, n, 0), "Budi, S.");
	CHECK_EQ_STR(fld(f, n, 1), "line1\nline2");
	CHECK_EQ_STR(fld(f, n, 2), "Bandung");

	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(line, 4);
	CHECK_EQ_STR(fld(f, n, 0), "say \"hi\"");
	CHECK_EQ_STR(fld(f, n, 1), "spaced");      /* unquoted spaces are trimmed */
	CHECK_EQ_STR(fld(f, n, 2), "q");

	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
}

static void test_bom_semicolon_crlf(void)
{
	const char *in = "\xEF\xBB\xBFnama;kota;catatan\r\n"
			 "Budi;\"Bandung; Jabar\";\"1,5 juta\"\r\n";
	rl_csv_reader *r = open_str(in, 0);
	char **f;
	size_t n;
	long line;

	CHECK_EQ_INT(rl_csv_delimiter(r), ';');
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_STR(fld(f, n, 0), "nama");        /* BOM stripped */
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 2);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_STR(fld(f, n, 1), "Bandung; Jabar");
	CHECK_EQ_STR(fld(f, n, 2), "1,5 juta");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);    /* no blank extra record */
	rl_csv_close(r);
}

static void test_detection(void)
{
	rl_csv_reader *r;

	/* commas inside quotes do not count */
	r = open_str("\"a,b,c,d\";e;f\n", 0);
	CHECK_EQ_INT(rl_csv_delimiter(r), ';');
	rl_csv_close(r);
	/* tie: ',' */
	r = open_str("a,b;c\n", 0);
	CHECK_EQ_INT(rl_csv_delimiter(r), ',');
	rl_csv_close(r);
	/* leading blank lines are skipped for detection */
	r = open_str("\n\r\na;b\n", 0);
	CHECK_EQ_INT(rl_csv_delimiter(r), ';');
	rl_csv_close(r);
	/* explicit delimiter wins */
	r = open_str("a;b;c\n", ',');
	CHECK_EQ_INT(rl_csv_delimiter(r), ',');
	rl_csv_close(r);
	/* empty input */
	r = open_str("", 0);
	CHECK_EQ_INT(rl_csv_delimiter(r), ',');
	{
		char **f;
		size_t n;
		long line;

		CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	}
	rl_csv_close(r);
}

static void test_blank_lines_and_final_line(void)
{
	const char *in = "a,b\r\n\r\n\r\nc,d\r\n   \r\ne,\"f\"";
	rl_csv_reader *r = open_str(in, 0);
	char **f;
	size_t n;
	long line;

	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 1);
	CHECK_EQ_STR(fld(f, n, 1), "b");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 4);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(fld(f, n, 0), "c");
	CHECK_EQ_STR(fld(f, n, 1), "d");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 6);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(fld(f, n, 0), "e");
	CHECK_EQ_STR(fld(f, n, 1), "f");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);

	/* lone CR line ends (old Mac exports) and empty fields */
	r = open_str("a,b\r,\rc,\r", 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 1);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 2);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(fld(f, n, 0), "");
	CHECK_EQ_STR(fld(f, n, 1), "");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 3);
	CHECK_EQ_STR(fld(f, n, 0), "c");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
}

static void test_line_numbers_after_multiline(void)
{
	const char *in =
		"h1,h2\n"               /* 1 */
		"\"x\r\ny\n\nz\",1\n"   /* 2-5 */
		"q,2\n"                 /* 6 */
		"\n"                    /* 7 */
		"r,\"3\"\n";            /* 8 */
	rl_csv_reader *r = open_str(in, 0);
	char **f;
	size_t n;
	long line;

	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 1);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 2);
	CHECK_EQ_STR(fld(f, n, 0), "x\r\ny\n\nz");  /* quoted bytes kept as they are */
	CHECK_EQ_STR(fld(f, n, 1), "1");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 6);
	CHECK_EQ_STR(fld(f, n, 0), "q");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 8);
	CHECK_EQ_STR(fld(f, n, 1), "3");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
}

/* A record of nf fields "v" followed by "\n". Caller frees. */
static char *make_fields_line(size_t nf)
{
	char *s = malloc(nf * 2 + 1);
	size_t i;

	if (!s)
		abort();
	for (i = 0; i < nf; i++) {
		s[2 * i] = 'v';
		s[2 * i + 1] = i + 1 < nf ? ',' : '\n';
	}
	s[2 * nf] = '\0';
	return s;
}

static void test_too_many_fields(void)
{
	char *ok = make_fields_line(RL_MAX_CSV_FIELDS);
	char *bad = make_fields_line(RL_MAX_CSV_FIELDS + 1);
	size_t len = strlen(ok) + strlen(bad) + 16;
	char *in = malloc(len);
	rl_csv_reader *r;
	char **f;
	size_t n;
	long line;

	if (!in)
		abort();
	snprintf(in, len, "%s%safter,1\n", ok, bad);
	r = open_str(in, 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(n, RL_MAX_CSV_FIELDS);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_ETOOBIG);
	CHECK(msg_has("line 2:"));
	CHECK(msg_has("more than 256 fields"));
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 3);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(fld(f, n, 0), "after");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
	free(ok);
	free(bad);
	free(in);
}

static void expect_bad_utf8(const char *field, const char *what)
{
	char in[128];
	rl_csv_reader *r;
	char **f;
	size_t n;
	long line;

	snprintf(in, sizeof(in), "a,b,c\nok,x%s,z\nnext,1\n", field);
	r = open_str(in, 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_EINVALID);
	if (!msg_has("line 2, column 2: invalid UTF-8"))
		fprintf(stderr, "  (%s) message: %s\n", what, rl_error_message());
	CHECK(msg_has("line 2, column 2: invalid UTF-8"));
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 3);
	CHECK_EQ_STR(fld(f, n, 0), "next");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
}

static void test_utf8(void)
{
	rl_csv_reader *r;
	char **f;
	size_t n;
	long line;

	expect_bad_utf8("\xC3\x28", "bad continuation");
	expect_bad_utf8("\xC0\xAF", "overlong 2-byte");
	expect_bad_utf8("\xE0\x80\xAF", "overlong 3-byte");
	expect_bad_utf8("\xF0\x80\x80\xAF", "overlong 4-byte");
	expect_bad_utf8("\xED\xA0\x80", "surrogate");
	expect_bad_utf8("\xF4\x90\x80\x80", "above U+10FFFF");
	expect_bad_utf8("\xF8\x88\x80\x80\x80", "5-byte form");
	expect_bad_utf8("\xE2\x82", "truncated");
	expect_bad_utf8("\xFF", "0xFF");

	/* the extremes of valid UTF-8 pass */
	r = open_str("\xC2\x80,\xEF\xBF\xBF,\xF0\x9F\x98\x80,\xF4\x8F\xBF\xBF,\xED\x9F\xBF\n", 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_STR(fld(f, n, 2), "\xF0\x9F\x98\x80");
	rl_csv_close(r);

	/* NUL inside a field */
	{
		static const char in[] = "a,b\x00" "c\nd,e\n";

		CHECK_EQ_INT(rl_csv_open_mem(&r, in, sizeof(in) - 1, 0), RL_OK);
		CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_EINVALID);
		CHECK(msg_has("line 1, column 2: NUL byte"));
		CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
		CHECK_EQ_STR(fld(f, n, 0), "d");
		rl_csv_close(r);
	}

	/* bad byte in a record that goes on over more lines: the whole
	 * record is skipped, not just its first line */
	r = open_str("\"\xFF\",\"multi\nline,\nstill\",2\nnext,3\n", 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_EINVALID);
	CHECK(msg_has("line 1, column 1: invalid UTF-8 (byte 0xFF at offset 0)"));
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 4);
	CHECK_EQ_STR(fld(f, n, 0), "next");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
}

static void test_malformed_quotes(void)
{
	rl_csv_reader *r;
	char **f;
	size_t n;
	long line;

	r = open_str("name,size\nBan,5\" tire\nc,d\n", 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_EINVALID);
	CHECK(msg_has("line 2: malformed quoting near \"Ban,5\" tire\""));
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 3);
	CHECK_EQ_STR(fld(f, n, 0), "c");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);

	/* error on the first line of a multi-line record: the rest of the
	 * record (up to the closing quote) is skipped */
	r = open_str("\"abc\"x,\"multi\nline\",z\nok\n", 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_EINVALID);
	CHECK(msg_has("line 1:"));
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 3);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_STR(fld(f, n, 0), "ok");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);

	/* a quote never closed */
	r = open_str("a,b\nc,\"open\nmore\n", 0);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_EINVALID);
	CHECK(msg_has("line 2: quoted field is not closed"));
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
}

/* "a,b\n" + `"` + 2 lines of `half` x's + `",2\n` + "next,3\n" */
static void test_record_too_long(void)
{
	size_t half = RL_MAX_CSV_RECORD_BYTES / 2 + 10;
	size_t len = 5 + 2 * (half + 1) + 11;
	char *in = malloc(len + 1);
	char *p = in;
	rl_csv_reader *r;
	char **f;
	size_t n;
	long line;

	if (!in)
		abort();
	memcpy(p, "a,b\n\"", 5);
	p += 5;
	memset(p, 'x', half);
	p += half;
	*p++ = '\n';
	memset(p, 'y', half);
	p += half;
	*p++ = '\n';
	memcpy(p, "\",2\nnext,3\n", 11);
	p += 11;
	*p = '\0';
	CHECK_EQ_INT((size_t)(p - in), len);

	CHECK_EQ_INT(rl_csv_open_mem(&r, in, len, 0), RL_OK);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_ETOOBIG);
	CHECK(msg_has("line 2: record longer than 1048576 bytes"));
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 5);
	CHECK_EQ_STR(fld(f, n, 0), "next");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
	free(in);
}

static char *temp_file(const char *data, size_t len)
{
	char tmpl[] = "/tmp/relasi-test-csv-XXXXXX";
	int fd = mkstemp(tmpl);
	char *path;

	if (fd < 0)
		abort();
	if (write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
	path = strdup(tmpl);
	if (!path)
		abort();
	return path;
}

/* A physical line over the cap, read from a file and from memory. */
static void test_line_too_long(void)
{
	size_t big = RL_MAX_CSV_RECORD_BYTES + 100;
	size_t len = 4 + big + 2 + 7;
	char *in = malloc(len);
	char *path;
	rl_csv_reader *r;
	char **f;
	size_t n;
	long line;
	int pass;

	if (!in)
		abort();
	memcpy(in, "a,b\n", 4);
	memset(in + 4, 'z', big);
	memcpy(in + 4 + big, "\r\nnext,3\n", 9);
	path = temp_file(in, len);

	for (pass = 0; pass < 2; pass++) {
		if (pass == 0)
			CHECK_EQ_INT(rl_csv_open(&r, path, 0), RL_OK);
		else
			CHECK_EQ_INT(rl_csv_open_mem(&r, in, len, 0), RL_OK);
		CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
		CHECK_EQ_STR(fld(f, n, 1), "b");
		CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), RL_ETOOBIG);
		CHECK(msg_has("line 2: line longer than 1048576 bytes"));
		CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
		CHECK_EQ_INT(line, 3);
		CHECK_EQ_STR(fld(f, n, 0), "next");
		CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
		rl_csv_close(r);
	}
	unlink(path);
	free(path);
	free(in);
}

static void test_open(void)
{
	static const char data[] = "k;v\nx;\"y\"\n";
	char *path = temp_file(data, sizeof(data) - 1);
	static char sentinel;
	rl_csv_reader *r = (rl_csv_reader *)(void *)&sentinel;
	char **f;
	size_t n;
	long line;

	CHECK_EQ_INT(rl_csv_open(&r, "/nonexistent/relasi.csv", 0), RL_EIO);
	CHECK(r == NULL);
	CHECK(msg_has("/nonexistent/relasi.csv"));
	CHECK_EQ_INT(rl_csv_open(&r, path, '\t'), RL_EINVALID);
	CHECK_EQ_INT(rl_csv_open_mem(&r, data, 3, '|'), RL_EINVALID);
	rl_csv_close(NULL);

	/* "-" is stdin */
	if (freopen(path, "rb", stdin) == NULL)
		abort();
	CHECK_EQ_INT(rl_csv_open(&r, "-", 0), RL_OK);
	CHECK_EQ_INT(rl_csv_delimiter(r), ';');
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 1);
	CHECK_EQ_INT(line, 2);
	CHECK_EQ_STR(fld(f, n, 1), "y");
	CHECK_EQ_INT(rl_csv_next(r, &f, &n, &line), 0);
	rl_csv_close(r);
	unlink(path);
	free(path);
}

static void test_write_exact(void)
{
	const char *row[] = { "a", "b,c", "d\"e", " f", NULL, "g;h" };
	const char *one[] = { "" };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		abort();
	CHECK_EQ_INT(rl_csv_write_row(f, row, 6, ','), RL_OK);
	CHECK_EQ_INT(rl_csv_write_row(f, row, 6, ';'), RL_OK);
	CHECK_EQ_INT(rl_csv_write_row(f, one, 1, ','), RL_OK);
	CHECK_EQ_INT(rl_csv_write_row(f, row, 6, '\t'), RL_EINVALID);
	fclose(f);
	CHECK_EQ_STR(buf,
		     "a,\"b,c\",\"d\"\"e\",\" f\",,g;h\r\n"
		     "a;b,c;\"d\"\"e\";\" f\";;\"g;h\"\r\n"
		     "\"\"\r\n");
	free(buf);
}

static void test_round_trip(void)
{
	const char *rows[][8] = {
		{ "nama", "catatan", "kota", "kosong", "spasi", "tab", "kutip", "campur" },
		{ "Budi \"Bos\" Santoso", "baris 1\nbaris 2\r\nbaris 3", "Bandung — Jl. Asia Afrika ñ",
		  "", "  leading and trailing  ", "\ttab\t", "\"", "a,b;c\"d\re" },
		{ NULL, ",", ";", " ", "\n", "x", "日本語", "" },
	};
	int delims[] = { ',', ';' };
	size_t d, i, j;

	for (d = 0; d < 2; d++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		rl_csv_reader *r;
		char **fl;
		size_t n;
		long line;

		if (!f)
			abort();
		for (i = 0; i < 3; i++)
			CHECK_EQ_INT(rl_csv_write_row(f, rows[i], 8, delims[d]), RL_OK);
		fclose(f);

		CHECK_EQ_INT(rl_csv_open_mem(&r, buf, len, 0), RL_OK);
		CHECK_EQ_INT(rl_csv_delimiter(r), delims[d]);
		for (i = 0; i < 3; i++) {
			CHECK_EQ_INT(rl_csv_next(r, &fl, &n, &line), 1);
			CHECK_EQ_INT(n, 8);
			if (n != 8)
				break;
			for (j = 0; j < 8; j++)
				CHECK_EQ_STR(fl[j], rows[i][j] ? rows[i][j] : "");
		}
		CHECK_EQ_INT(rl_csv_next(r, &fl, &n, &line), 0);
		rl_csv_close(r);
		free(buf);
	}
}

int main(void)
{
	test_quoting();
	test_bom_semicolon_crlf();
	test_detection();
	test_blank_lines_and_final_line();
	test_line_numbers_after_multiline();
	test_too_many_fields();
	test_utf8();
	test_malformed_quotes();
	test_record_too_long();
	test_line_too_long();
	test_open();
	test_write_exact();
	test_round_trip();
	CHECK_DONE();
}
