/*
 * csv.c — the CSV reader (on libcsv) and writer behind relasi/csv.h.
 *
 * libcsv reports fields and rows but no positions, so the reader feeds it one
 * physical line at a time and counts lines itself. A physical line ends at
 * LF, CRLF or a lone CR (libcsv treats CR and LF as row terminators, so this
 * keeps line numbers and rows in step). Lines come from a bounded reader: a
 * line longer than RL_MAX_CSV_RECORD_BYTES is handed out in pieces and
 * refused, never buffered whole.
 *
 * To skip a bad record the reader must know where it ends even when libcsv
 * has stopped (strict-mode error) or is no longer fed (record too long). A
 * small "mirror" of libcsv's quoting state machine runs over every byte fed
 * or skipped; a record ends at a line end where the mirror is not inside
 * quotes. The same machine, with both ',' and ';' as delimiters, detects the
 * delimiter from the first non-blank line.
 */
#include "relasi/csv.h"
#include "utf8.h"

#include <csv.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"

/* libcsv grows its field buffer linearly by this much; the default (128)
 * makes a 1 MiB quoted field cost thousands of reallocs. */
#define RL_CSV_BLK_SIZE (16 * 1024)

#define RL_CSV_OPTS (CSV_STRICT | CSV_STRICT_FINI)

/* States of the quoting mirror (see the comment at the top). */
enum {
	RL_CSV_M_FIELD_START = 0, /* at the start of a field or row */
	RL_CSV_M_UNQUOTED,        /* inside an unquoted field */
	RL_CSV_M_QUOTED,          /* inside quotes */
	RL_CSV_M_QUOTE_SEEN       /* a quote inside quotes: end or "" escape */
};

struct rl_csv_reader {
	/* input: a FILE or a memory buffer */
	FILE *f;
	int close_f;
	const unsigned char *mem;
	size_t mem_len;
	size_t mem_pos;
	int unget;              /* one byte pushed back, or -1 */
	int bom_checked;

	/* the current physical line (or piece of an over-long one) */
	char *lbuf;
	size_t lcap;
	size_t llen;
	int leol;               /* the piece ends its physical line */
	long lno;               /* line number of the next piece */

	/* the first non-blank line, read by open for delimiter detection */
	int peeked;
	int peek_rc;
	long peek_line;

	struct csv_parser p;
	int parser_live;
	int delim;
	int mirror;
	int skipping;           /* discarding the rest of a bad record */
	int done;               /* end of input was reported */
	int fatal;              /* sticky RL_EIO / RL_ENOMEM */

	/* the record being assembled */
	int in_record;
	long rec_line;
	size_t rec_bytes;       /* input bytes fed for this record */
	char *rec;              /* fields, each NUL-terminated */
	size_t rec_len;
	size_t rec_cap;
	size_t offs[RL_MAX_CSV_FIELDS];
	char *fields[RL_MAX_CSV_FIELDS];
	size_t nfields;
	int row_done;
	int err;                /* first error seen by a callback */
};

/* The reader trims only U+0020 around unquoted fields, so a tab is data and
 * the writer's "quote leading/trailing spaces" rule round-trips. */
static int rl_csv_is_space(unsigned char c)
{
	return c == ' ';
}

/* One step of the quoting mirror; delim 0 means "',' or ';'" (detection).
 * Returns 1 when c was a delimiter outside quotes. */
static int rl_csv_mirror_step(int *state, unsigned char c, int delim)
{
	int is_delim = delim ? c == delim : (c == ',' || c == ';');
	int is_term = c == '\r' || c == '\n';

	switch (*state) {
	case RL_CSV_M_QUOTED:
		if (c == '"')
			*state = RL_CSV_M_QUOTE_SEEN;
		return 0;
	case RL_CSV_M_QUOTE_SEEN:
		if (is_delim || is_term)
			*state = RL_CSV_M_FIELD_START;
		else if (c != ' ')
			/* "" is an escaped quote; anything else after a closing
			 * quote is an error for libcsv, and its lenient reading
			 * (still inside quotes) is the best guess of where the
			 * writer meant the field to end. */
			*state = RL_CSV_M_QUOTED;
		return is_delim;
	case RL_CSV_M_UNQUOTED:
		if (is_delim || is_term)
			*state = RL_CSV_M_FIELD_START;
		return is_delim;
	default:
		if (c == '"')
			*state = RL_CSV_M_QUOTED;
		else if (!is_delim && !is_term && c != ' ')
			*state = RL_CSV_M_UNQUOTED;
		return is_delim;
	}
}

static void rl_csv_mirror(rl_csv_reader *r, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		rl_csv_mirror_step(&r->mirror, (unsigned char)s[i], r->delim);
}

/* ',' or ';', whichever occurs more often outside quotes; ',' on a tie. */
static int rl_csv_detect(const char *s, size_t len)
{
	size_t i, commas = 0, semis = 0;
	int state = RL_CSV_M_FIELD_START;

	for (i = 0; i < len; i++) {
		if (rl_csv_mirror_step(&state, (unsigned char)s[i], 0)) {
			if (s[i] == ',')
				commas++;
			else
				semis++;
		}
	}
	return semis > commas ? ';' : ',';
}

/* A line libcsv would skip without starting a row. */
static int rl_csv_blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

static int rl_csv_getc(rl_csv_reader *r)
{
	int c;

	if (r->unget >= 0) {
		c = r->unget;
		r->unget = -1;
		return c;
	}
	if (r->f)
		return getc(r->f);
	if (r->mem_pos < r->mem_len)
		return r->mem[r->mem_pos++];
	return EOF;
}

static int rl_csv_read_failed(rl_csv_reader *r)
{
	return r->f && ferror(r->f);
}

/* Append one byte to the line buffer; the caller keeps llen below the cap. */
static int rl_csv_lput(rl_csv_reader *r, int c)
{
	if (r->llen == r->lcap) {
		size_t ncap = r->lcap ? r->lcap * 2 : 256;
		char *p;

		if (ncap > RL_MAX_CSV_RECORD_BYTES)
			ncap = RL_MAX_CSV_RECORD_BYTES;
		p = realloc(r->lbuf, ncap);
		if (!p)
			return rl_error_set(RL_ENOMEM, "out of memory reading CSV");
		r->lbuf = p;
		r->lcap = ncap;
	}
	r->lbuf[r->llen++] = (char)c;
	return RL_OK;
}

/*
 * Read the next physical line (with its terminator) into lbuf, at most
 * RL_MAX_CSV_RECORD_BYTES of it: a longer line comes out in pieces with
 * leol = 0. Returns 1 with *line set, 0 at end of input, or an error.
 */
static int rl_csv_read_line(rl_csv_reader *r, long *line)
{
	int c, rc;

	r->llen = 0;
	r->leol = 0;
	for (;;) {
		if (r->llen == RL_MAX_CSV_RECORD_BYTES) {
			/* A line of exactly the cap at end of input is whole. */
			c = rl_csv_getc(r);
			if (c == EOF)
				r->leol = 1;
			else
				r->unget = c;
			break;
		}
		c = rl_csv_getc(r);
		if (c == EOF) {
			if (rl_csv_read_failed(r))
				return rl_error_set(RL_EIO, "line %ld: read error: %s",
						    r->lno, strerror(errno));
			if (r->llen == 0)
				return 0;
			r->leol = 1;    /* last line without a newline */
			break;
		}
		rc = rl_csv_lput(r, c);
		if (rc)
			return rc;
		if (c == '\n') {
			r->leol = 1;
			break;
		}
		if (c == '\r') {
			c = rl_csv_getc(r);
			if (c == '\n') {
				if (r->llen < RL_MAX_CSV_RECORD_BYTES) {
					rc = rl_csv_lput(r, c);
					if (rc)
						return rc;
					r->leol = 1;
				} else {
					/* CRLF straddles the cap: the line is
					 * too long; the LF ends the next piece. */
					r->unget = c;
				}
			} else {
				if (c != EOF)
					r->unget = c;
				r->leol = 1;    /* a lone CR ends the line */
			}
			break;
		}
	}
	if (!r->bom_checked) {
		r->bom_checked = 1;
		if (r->llen >= 3 && memcmp(r->lbuf, "\xEF\xBB\xBF", 3) == 0) {
			memmove(r->lbuf, r->lbuf + 3, r->llen - 3);
			r->llen -= 3;
		}
	}
	*line = r->lno;
	if (r->leol)
		r->lno++;
	return 1;
}

static int rl_csv_next_line(rl_csv_reader *r, long *line)
{
	if (r->peeked) {
		r->peeked = 0;
		*line = r->peek_line;
		return r->peek_rc;
	}
	return rl_csv_read_line(r, line);
}

static int rl_csv_parser_init(rl_csv_reader *r)
{
	if (csv_init(&r->p, RL_CSV_OPTS) != 0)
		return rl_error_set(RL_ENOMEM, "cannot initialise the CSV parser");
	csv_set_delim(&r->p, (unsigned char)r->delim);
	csv_set_space_func(&r->p, rl_csv_is_space);
	csv_set_blk_size(&r->p, RL_CSV_BLK_SIZE);
	r->parser_live = 1;
	return RL_OK;
}

/* Drop whatever libcsv holds (after an error it may be mid-field). */
static int rl_csv_parser_reset(rl_csv_reader *r)
{
	if (r->parser_live)
		csv_free(&r->p);
	r->parser_live = 0;
	return rl_csv_parser_init(r);
}

static void rl_csv_on_field(void *s, size_t len, void *data)
{
	rl_csv_reader *r = data;
	size_t bad, need;

	if (r->err)
		return;
	if (r->nfields == RL_MAX_CSV_FIELDS) {
		r->err = rl_error_set(RL_ETOOBIG, "line %ld: more than %d fields",
				      r->rec_line, RL_MAX_CSV_FIELDS);
		return;
	}
	bad = rl_utf8_bad(s, len);
	if (bad < len) {
		unsigned char b = ((const unsigned char *)s)[bad];

		if (b == 0)
			r->err = rl_error_set(RL_EINVALID,
					      "line %ld, column %zu: NUL byte in field",
					      r->rec_line, r->nfields + 1);
		else
			r->err = rl_error_set(RL_EINVALID,
					      "line %ld, column %zu: invalid UTF-8 (byte 0x%02X at offset %zu)",
					      r->rec_line, r->nfields + 1, b, bad);
		return;
	}
	/* Fields never hold more than the input fed for the record (checked
	 * against RL_MAX_CSV_RECORD_BYTES), plus one NUL each. */
	if (len > RL_MAX_CSV_RECORD_BYTES - r->rec_len) {
		r->err = rl_error_set(RL_ETOOBIG, "line %ld: record longer than %d bytes",
				      r->rec_line, RL_MAX_CSV_RECORD_BYTES);
		return;
	}
	need = r->rec_len + len + 1;
	if (need > r->rec_cap) {
		size_t ncap = r->rec_cap ? r->rec_cap : 256;
		char *p;

		while (ncap < need)
			ncap *= 2;      /* need <= 1 MiB + 257: no overflow */
		p = realloc(r->rec, ncap);
		if (!p) {
			r->err = rl_error_set(RL_ENOMEM, "out of memory reading CSV");
			return;
		}
		r->rec = p;
		r->rec_cap = ncap;
	}
	if (len)
		memcpy(r->rec + r->rec_len, s, len);
	r->rec[r->rec_len + len] = '\0';
	r->offs[r->nfields++] = r->rec_len;
	r->rec_len += len + 1;
}

static void rl_csv_on_row(int c, void *data)
{
	rl_csv_reader *r = data;

	(void)c;
	r->row_done = 1;
}

/*
 * Abandon the current record with error code rc: reset libcsv and, unless
 * the line just seen ended the record, skip lines until one does. eol says
 * whether that line was complete.
 */
static int rl_csv_abandon(rl_csv_reader *r, int rc, int eol)
{
	int reset = rl_csv_parser_reset(r);

	if (reset)
		return r->fatal = reset;
	r->skipping = !(eol && r->mirror != RL_CSV_M_QUOTED);
	r->in_record = 0;
	return rc;
}

/* Quote a short stretch of s around at for an error message, cut at UTF-8
 * character boundaries and at line ends. */
static void rl_csv_excerpt(char *out, size_t outsz, const char *s, size_t len, size_t at)
{
	size_t b = at > 12 ? at - 12 : 0;
	size_t e = len - at > 12 ? at + 12 : len;
	size_t i, n = 0;

	while (b < at && ((unsigned char)s[b] & 0xC0) == 0x80)
		b++;
	while (e > at && e < len && ((unsigned char)s[e] & 0xC0) == 0x80)
		e--;
	for (i = b; i < e && n + 1 < outsz; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (i >= at)
				break;
			n = 0;  /* keep only the line holding the error */
			continue;
		}
		out[n++] = s[i];
	}
	out[n] = '\0';
}

static int rl_csv_emit(rl_csv_reader *r, char ***fields, size_t *nfields)
{
	size_t i;

	for (i = 0; i < r->nfields; i++)
		r->fields[i] = r->rec + r->offs[i];
	*fields = r->fields;
	*nfields = r->nfields;
	r->in_record = 0;
	return 1;
}

/* End of input: flush a last record that had no line end. */
static int rl_csv_finish(rl_csv_reader *r, char ***fields, size_t *nfields)
{
	r->done = 1;
	r->skipping = 0;
	if (!r->in_record)
		return 0;
	r->in_record = 0;
	if (csv_fini(&r->p, rl_csv_on_field, rl_csv_on_row, r) != 0)
		return r->err ? r->err
			: rl_error_set(RL_EINVALID,
				       "line %ld: quoted field is not closed before the end of the input",
				       r->rec_line);
	if (r->err)
		return r->err;
	if (!r->row_done)
		return 0;
	return rl_csv_emit(r, fields, nfields);
}

int rl_csv_next(rl_csv_reader *r, char ***fields, size_t *nfields, long *line)
{
	int rc;

	*fields = NULL;
	*nfields = 0;
	if (r->fatal)
		return r->fatal;
	if (r->done)
		return 0;
	r->in_record = 0;
	r->rec_bytes = 0;
	r->rec_len = 0;
	r->nfields = 0;
	r->row_done = 0;
	r->err = 0;

	for (;;) {
		const char *s;
		size_t len, n;
		long lno;
		int eol;

		rc = rl_csv_next_line(r, &lno);
		if (rc < 0)
			return r->fatal = rc;
		if (rc == 0) {
			*line = r->rec_line;
			return rl_csv_finish(r, fields, nfields);
		}
		s = r->lbuf;
		len = r->llen;
		eol = r->leol;
		rl_csv_mirror(r, s, len);

		if (r->skipping) {
			if (eol && r->mirror != RL_CSV_M_QUOTED)
				r->skipping = 0;
			continue;
		}
		if (!r->in_record) {
			if (rl_csv_blank(s, len))
				continue;
			r->in_record = 1;
			r->rec_line = lno;
		}
		*line = r->rec_line;
		if (!eol) {
			rc = r->err ? r->err
				: rl_error_set(RL_ETOOBIG, "line %ld: line longer than %d bytes",
					       lno, RL_MAX_CSV_RECORD_BYTES);
			return rl_csv_abandon(r, rc, eol);
		}
		if (len > RL_MAX_CSV_RECORD_BYTES - r->rec_bytes) {
			rc = r->err ? r->err
				: rl_error_set(RL_ETOOBIG, "line %ld: record longer than %d bytes",
					       r->rec_line, RL_MAX_CSV_RECORD_BYTES);
			return rl_csv_abandon(r, rc, eol);
		}
		r->rec_bytes += len;

		n = csv_parse(&r->p, s, len, rl_csv_on_field, rl_csv_on_row, r);
		if (n < len) {
			char near[64];

			if (csv_error(&r->p) != CSV_EPARSE) {
				rl_error_set(RL_ENOMEM, "line %ld: CSV parser: %s",
					     lno, csv_strerror(csv_error(&r->p)));
				return r->fatal = RL_ENOMEM;
			}
			rl_csv_excerpt(near, sizeof(near), s, len, n);
			rc = r->err ? r->err
				: rl_error_set(RL_EINVALID,
					       "line %ld: malformed quoting near \"%s\" (a quote inside an unquoted field, or text after a closing quote)",
					       lno, near);
			return rl_csv_abandon(r, rc, eol);
		}
		if (r->row_done) {
			r->in_record = 0;
			if (r->err)
				return r->err;
			return rl_csv_emit(r, fields, nfields);
		}
	}
}

/* Shared by both opens: parser, then a peek at the first non-blank line to
 * detect the delimiter, kept for rl_csv_next. */
static int rl_csv_start(rl_csv_reader *r, int delimiter)
{
	int rc;
	long lno = 1;

	r->unget = -1;
	r->lno = 1;
	r->rec_line = 1;
	for (;;) {
		rc = rl_csv_read_line(r, &lno);
		if (rc <= 0 || !rl_csv_blank(r->lbuf, r->llen))
			break;
	}
	r->peeked = 1;
	r->peek_rc = rc;
	r->peek_line = lno;
	if (delimiter)
		r->delim = delimiter;
	else if (rc == 1)
		r->delim = rl_csv_detect(r->lbuf, r->llen);
	else
		r->delim = ',';
	return rl_csv_parser_init(r);
}

static int rl_csv_check_delim(int delimiter)
{
	if (delimiter != 0 && delimiter != ',' && delimiter != ';')
		return rl_error_set(RL_EINVALID,
				    "CSV delimiter must be ',' or ';' (got character %d)",
				    delimiter);
	return RL_OK;
}

int rl_csv_open(rl_csv_reader **out, const char *path, int delimiter)
{
	rl_csv_reader *r = NULL;
	int rc;

	*out = NULL;
	rc = rl_csv_check_delim(delimiter);
	if (rc)
		goto cleanup;
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = rl_error_set(RL_ENOMEM, "out of memory opening '%s'", path);
		goto cleanup;
	}
	if (strcmp(path, "-") == 0) {
		r->f = stdin;
	} else {
		r->f = fopen(path, "rb");
		if (!r->f) {
			rc = rl_error_set(RL_EIO, "cannot open '%s': %s", path, strerror(errno));
			goto cleanup;
		}
		r->close_f = 1;
	}
	rc = rl_csv_start(r, delimiter);
	if (rc)
		goto cleanup;
	*out = r;
	r = NULL;
cleanup:
	rl_csv_close(r);
	return rc;
}

int rl_csv_open_mem(rl_csv_reader **out, const char *data, size_t len, int delimiter)
{
	rl_csv_reader *r = NULL;
	int rc;

	*out = NULL;
	rc = rl_csv_check_delim(delimiter);
	if (rc)
		goto cleanup;
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = rl_error_set(RL_ENOMEM, "out of memory opening CSV buffer");
		goto cleanup;
	}
	r->mem = (const unsigned char *)data;
	r->mem_len = data ? len : 0;
	rc = rl_csv_start(r, delimiter);
	if (rc)
		goto cleanup;
	*out = r;
	r = NULL;
cleanup:
	rl_csv_close(r);
	return rc;
}

int rl_csv_record_blank(char *const *fields, size_t nfields)
{
	size_t i;

	for (i = 0; i < nfields; i++)
		if (fields[i] && fields[i][0])
			return 0;
	return 1;
}

int rl_csv_delimiter(const rl_csv_reader *r)
{
	return r->delim;
}

void rl_csv_close(rl_csv_reader *r)
{
	if (!r)
		return;
	if (r->parser_live)
		csv_free(&r->p);
	if (r->close_f)
		fclose(r->f);
	free(r->lbuf);
	free(r->rec);
	free(r);
}

static int rl_csv_needs_quotes(const char *s, int delimiter)
{
	size_t len = strlen(s);

	if (len && (s[0] == ' ' || s[len - 1] == ' '))
		return 1;       /* the reader trims unquoted spaces */
	for (; *s; s++)
		if (*s == delimiter || *s == '"' || *s == '\r' || *s == '\n')
			return 1;
	return 0;
}

int rl_csv_write_row(FILE *f, const char *const *fields, size_t n, int delimiter)
{
	size_t i;

	if (delimiter != ',' && delimiter != ';')
		return rl_error_set(RL_EINVALID,
				    "CSV delimiter must be ',' or ';' (got character %d)",
				    delimiter);
	for (i = 0; i < n; i++) {
		const char *s = fields[i] ? fields[i] : "";

		if (i > 0)
			putc(delimiter, f);
		/* A lone empty field would be a blank line, which readers
		 * skip; "" keeps the record. */
		if (rl_csv_needs_quotes(s, delimiter) || (n == 1 && *s == '\0')) {
			const char *q;

			putc('"', f);
			while ((q = strchr(s, '"')) != NULL) {
				fwrite(s, 1, (size_t)(q - s) + 1, f);
				putc('"', f);
				s = q + 1;
			}
			fputs(s, f);
			putc('"', f);
		} else {
			fputs(s, f);
		}
	}
	fputs("\r\n", f);
	if (ferror(f))
		return rl_error_set(RL_EIO, "writing CSV failed: %s", strerror(errno));
	return RL_OK;
}
