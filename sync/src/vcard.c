/*
 * vcard.c — the vCard 3.0 / 4.0 parser and writer behind relasi/vcard.h.
 *
 * Parsing streams over the buffer once: physical lines (CRLF, LF or CR) are
 * unfolded into logical content lines, each remembering the physical line it
 * began on so that errors can name it. Each logical line is checked (UTF-8,
 * length) and split into [group.]NAME, parameters and value before its name
 * is even looked at, so unknown properties are skipped but still validated.
 * Cards are built in a parser state and handed out only when the whole input
 * parsed; on any error everything built so far is freed.
 *
 * Writing builds each content line in a buffer, then folds it at 75 octets
 * without cutting a UTF-8 sequence.
 */
#include "relasi/vcard.h"
#include "utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"

/* RFC 6350 3.2: lines SHOULD NOT be longer than 75 octets. */
#define RL_VC_FOLD 75

/* Longest stretch of input quoted in an error message. */
#define RL_VC_EXCERPT 40

/* A growable byte buffer; len never exceeds the max given to rl_vc_add. */
typedef struct rl_vc_buf {
	char *p;
	size_t len;
	size_t cap;
} rl_vc_buf;

typedef struct rl_vc_state {
	rl_vcard *cards;
	size_t ncards;
	size_t cap;
	rl_vcard cur;
	int in_card;
	int version;            /* 3 or 4 once VERSION is seen, else 0 */
	char *family;           /* N components, kept until END to build FN */
	char *given;
	int have_n;
} rl_vc_state;


/* Append n bytes (keeping a NUL after them) unless len would pass max. */
static int rl_vc_add(rl_vc_buf *b, const char *s, size_t n, size_t max)
{
	size_t need;

	if (n > max || b->len > max - n)
		return RL_ETOOBIG;
	need = b->len + n + 1;
	if (need > b->cap) {
		size_t ncap = b->cap ? b->cap : 128;
		char *p;

		while (ncap < need) {
			if (ncap > SIZE_MAX / 2) {
				ncap = need;
				break;
			}
			ncap *= 2;
		}
		p = realloc(b->p, ncap);
		if (!p)
			return rl_error_set(RL_ENOMEM, "out of memory");
		b->p = p;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return RL_OK;
}

static int rl_vc_name_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

static int rl_vc_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* s[0..n) equals lit, ignoring ASCII case. */
static int rl_vc_ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || rl_vc_lower((unsigned char)s[i]) != rl_vc_lower((unsigned char)lit[i]))
			return 0;
	return lit[n] == '\0';
}

/* s starts with lit, ignoring ASCII case. */
static int rl_vc_iprefix(const char *s, const char *lit)
{
	for (; *lit; s++, lit++)
		if (rl_vc_lower((unsigned char)*s) != rl_vc_lower((unsigned char)*lit))
			return 0;
	return 1;
}

static void rl_vc_trim_span(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* Copy at most RL_VC_EXCERPT bytes of s for a message, whole characters
 * only (s is valid UTF-8 by then). */
static void rl_vc_excerpt(char out[RL_VC_EXCERPT + 4], const char *s, size_t n)
{
	size_t k = n;

	if (k > RL_VC_EXCERPT) {
		k = RL_VC_EXCERPT;
		while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
	}
	memcpy(out, s, k);
	if (k < n) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

/*
 * Unescape a text value into a new string: \n \N -> newline, \, \; \\ -> the
 * char, a backslash before anything else keeps that char, a trailing lone
 * backslash stays. Trimmed when trim is set. An empty result gives NULL.
 */
static int rl_vc_text(char **out, const char *v, size_t n, int trim)
{
	char *s, *d;
	size_t i;

	*out = NULL;
	if (trim)
		rl_vc_trim_span(&v, &n);
	s = malloc(n + 1);      /* n < RL_MAX_VCARD_LINE_BYTES: no overflow */
	if (!s)
		return rl_error_set(RL_ENOMEM, "out of memory");
	d = s;
	for (i = 0; i < n; i++) {
		if (v[i] == '\\' && i + 1 < n) {
			i++;
			*d++ = (v[i] == 'n' || v[i] == 'N') ? '\n' : v[i];
		} else {
			*d++ = v[i];
		}
	}
	*d = '\0';
	if (trim) {
		/* an escaped newline at either end is still white space to a
		 * name; trim again after unescaping */
		const char *t = s;
		size_t tn = (size_t)(d - s);

		while (tn && (*t == ' ' || *t == '\t' || *t == '\n')) {
			t++;
			tn--;
		}
		while (tn && (t[tn - 1] == ' ' || t[tn - 1] == '\t' || t[tn - 1] == '\n'))
			tn--;
		memmove(s, t, tn);
		s[tn] = '\0';
		d = s + tn;
	}
	if (d == s) {
		free(s);
		return RL_OK;
	}
	*out = s;
	return RL_OK;
}

/* The idx-th ';'-separated component of a structured value (N, ADR, ORG),
 * honouring backslash escapes; an empty span when there are fewer. */
static void rl_vc_component(const char *v, size_t n, size_t idx, const char **cs, size_t *cn)
{
	size_t i = 0, start = 0, k = 0;

	for (;;) {
		if (i == n || v[i] == ';') {
			if (k == idx) {
				*cs = v + start;
				*cn = i - start;
				return;
			}
			if (i == n)
				break;
			k++;
			start = i + 1;
		} else if (v[i] == '\\' && i + 1 < n) {
			i++;
		}
		i++;
	}
	*cs = v + n;
	*cn = 0;
}

/* Set *slot from a text value unless an earlier property already did. */
static int rl_vc_set_once(char **slot, const char *v, size_t n, int trim)
{
	if (*slot)
		return RL_OK;
	return rl_vc_text(slot, v, n, trim);
}

static void rl_vc_card_clear(rl_vcard *c)
{
	size_t i;

	free(c->fn);
	free(c->org);
	free(c->title);
	free(c->note);
	free(c->city);
	free(c->uid);
	for (i = 0; i < c->ntel; i++)
		free(c->tel[i]);
	for (i = 0; i < c->nemail; i++)
		free(c->email[i]);
	free(c->tel);
	free(c->email);
	memset(c, 0, sizeof(*c));
}

void rl_vcard_free_all(rl_vcard *cards, size_t ncards)
{
	size_t i;

	if (!cards)
		return;
	for (i = 0; i < ncards; i++)
		rl_vc_card_clear(&cards[i]);
	free(cards);
}

static void rl_vc_state_free(rl_vc_state *st)
{
	rl_vcard_free_all(st->cards, st->ncards);
	rl_vc_card_clear(&st->cur);
	free(st->family);
	free(st->given);
	memset(st, 0, sizeof(*st));
}

/* FN from N: "given family", either part may be missing. */
static int rl_vc_fn_from_n(rl_vc_state *st)
{
	size_t gl = st->given ? strlen(st->given) : 0;
	size_t fl = st->family ? strlen(st->family) : 0;
	char *fn;

	if (gl + fl == 0)
		return RL_OK;
	fn = malloc(gl + fl + 2);       /* both < 1 MiB: no overflow */
	if (!fn)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (gl)
		memcpy(fn, st->given, gl);
	if (gl && fl)
		fn[gl++] = ' ';
	if (fl)
		memcpy(fn + gl, st->family, fl);
	fn[gl + fl] = '\0';
	st->cur.fn = fn;
	return RL_OK;
}

static int rl_vc_end_card(rl_vc_state *st)
{
	long begin = st->cur.line;
	int rc;

	if (!st->version)
		return rl_error_set(RL_EINVALID, "line %ld: card has no VERSION", begin);
	if (!st->cur.fn) {
		rc = rl_vc_fn_from_n(st);
		if (rc)
			return rc;
		if (!st->cur.fn)
			return rl_error_set(RL_EINVALID,
					    "line %ld: card has neither FN nor a name in N", begin);
	}
	if (st->ncards == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 16;
		rl_vcard *p;

		if (ncap > SIZE_MAX / sizeof(*p))
			return rl_error_set(RL_ENOMEM, "too many cards");
		p = realloc(st->cards, ncap * sizeof(*p));
		if (!p)
			return rl_error_set(RL_ENOMEM, "out of memory");
		st->cards = p;
		st->cap = ncap;
	}
	st->cards[st->ncards++] = st->cur;
	memset(&st->cur, 0, sizeof(st->cur));
	free(st->family);
	free(st->given);
	st->family = st->given = NULL;
	st->have_n = 0;
	st->in_card = 0;
	st->version = 0;
	return RL_OK;
}

/* Look at one parameter value; only the 2.1 leftovers matter here. */
static int rl_vc_param(const char *pn, size_t pnl, const char *pv, size_t pvl, long lno)
{
	char ex[RL_VC_EXCERPT + 4];

	if ((rl_vc_ieq(pn, pnl, "ENCODING") && rl_vc_ieq(pv, pvl, "QUOTED-PRINTABLE")) ||
	    (pvl == 0 && rl_vc_ieq(pn, pnl, "QUOTED-PRINTABLE")))
		return rl_error_set(RL_EINVALID,
				    "line %ld: QUOTED-PRINTABLE encoding (vCard 2.1) is not supported; export as vCard 3.0 or 4.0",
				    lno);
	if (rl_vc_ieq(pn, pnl, "CHARSET") && !rl_vc_ieq(pv, pvl, "UTF-8") &&
	    !rl_vc_ieq(pv, pvl, "UTF8")) {
		rl_vc_excerpt(ex, pv, pvl);
		return rl_error_set(RL_EINVALID,
				    "line %ld: CHARSET=%s is not supported (only UTF-8)", lno, ex);
	}
	return RL_OK;
}

/* A text value without a URI scheme prefix ("tel:", "urn:uuid:"), which is
 * removed before unescaping so that white space after it is trimmed too. */
static int rl_vc_text_unprefixed(char **out, const char *v, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix), k = 0, len;
	char *s;
	int rc;

	rl_vc_trim_span(&v, &n);
	if (n >= pl && rl_vc_iprefix(v, prefix)) {
		v += pl;
		n -= pl;
	}
	if ((rc = rl_vc_text(out, v, n, 1)) != RL_OK || !*out)
		return rc;
	/* An escaped scheme ("tel\:+62...") or a repeated one only shows
	 * after unescaping: drop it there too (and the white space after it),
	 * so that no value keeps it; otherwise a value read back from our own
	 * output would lose it and not round-trip. Found by fuzz/fuzz_vcard. */
	s = *out;
	len = strlen(s);
	for (;;) {
		if (len - k >= pl && rl_vc_iprefix(s + k, prefix))
			k += pl;
		else if (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n'))
			k++;
		else
			break;
	}
	if (k == len) {
		free(s);
		*out = NULL;
	} else if (k > 0) {
		memmove(s, s + k, len - k + 1);
	}
	return RL_OK;
}

/* Add a TEL or EMAIL value to the card's array, growing it. Every value is
 * kept: the importer promises the card's second and later numbers in the
 * notes. Past RL_MAX_VCARD_VALUES the card is refused rather than cut. */
static int rl_vc_add_value(char ***arr, size_t *n, const char *v, size_t vl, const char *prefix,
			   const char *what, long card_line, long lno)
{
	char *s, **grown;
	int rc;

	if (*n == RL_MAX_VCARD_VALUES)
		return rl_error_set(RL_ETOOBIG,
				    "line %ld: the card at line %ld has more than %d %s values",
				    lno, card_line, RL_MAX_VCARD_VALUES, what);
	rc = prefix ? rl_vc_text_unprefixed(&s, v, vl, prefix) : rl_vc_text(&s, v, vl, 1);
	if (rc || !s)
		return rc;
	/* capacity: the powers of two, so grow when n is 0 or one of them */
	if ((*n & (*n - 1)) == 0) {
		size_t cap = *n ? *n * 2 : 2;
		if (!(grown = realloc(*arr, cap * sizeof(*grown)))) {
			free(s);
			return rl_error_set(RL_ENOMEM, "out of memory");
		}
		*arr = grown;
	}
	(*arr)[(*n)++] = s;
	return RL_OK;
}

/* Handle one property of the current card. */
static int rl_vc_apply(rl_vc_state *st, const char *name, size_t nl,
		       const char *v, size_t vl, long lno)
{
	rl_vcard *c = &st->cur;
	char ex[RL_VC_EXCERPT + 4];
	const char *cs;
	size_t cn;
	int rc;

	if (rl_vc_ieq(name, nl, "VERSION")) {
		rl_vc_trim_span(&v, &vl);
		if (rl_vc_ieq(v, vl, "3.0")) {
			st->version = 3;
		} else if (rl_vc_ieq(v, vl, "4.0")) {
			st->version = 4;
		} else if (rl_vc_ieq(v, vl, "2.1")) {
			return rl_error_set(RL_EINVALID,
					    "line %ld: vCard 2.1 is not supported; export as vCard 3.0 or 4.0",
					    lno);
		} else {
			rl_vc_excerpt(ex, v, vl);
			return rl_error_set(RL_EINVALID,
					    "line %ld: unsupported vCard VERSION '%s' (3.0 or 4.0 expected)",
					    lno, ex);
		}
		return RL_OK;
	}
	if (rl_vc_ieq(name, nl, "FN")) {
		return rl_vc_set_once(&c->fn, v, vl, 1);
	}
	if (rl_vc_ieq(name, nl, "N")) {
		if (st->have_n)
			return RL_OK;
		st->have_n = 1;
		rl_vc_component(v, vl, 0, &cs, &cn);
		rc = rl_vc_text(&st->family, cs, cn, 1);
		if (rc)
			return rc;
		rl_vc_component(v, vl, 1, &cs, &cn);
		return rl_vc_text(&st->given, cs, cn, 1);
	}
	if (rl_vc_ieq(name, nl, "ORG")) {
		rl_vc_component(v, vl, 0, &cs, &cn);
		return rl_vc_set_once(&c->org, cs, cn, 1);
	}
	if (rl_vc_ieq(name, nl, "TITLE"))
		return rl_vc_set_once(&c->title, v, vl, 1);
	if (rl_vc_ieq(name, nl, "NOTE"))
		return rl_vc_set_once(&c->note, v, vl, 0);
	if (rl_vc_ieq(name, nl, "ADR")) {
		/* pobox;ext;street;locality;region;code;country; the first
		 * address that names a city gives it */
		rl_vc_component(v, vl, 3, &cs, &cn);
		return rl_vc_set_once(&c->city, cs, cn, 1);
	}
	if (rl_vc_ieq(name, nl, "UID")) {
		if (c->uid)
			return RL_OK;
		return rl_vc_text_unprefixed(&c->uid, v, vl, "urn:uuid:");
	}
	if (rl_vc_ieq(name, nl, "TEL"))
		return rl_vc_add_value(&c->tel, &c->ntel, v, vl, "tel:", "TEL", c->line, lno);
	if (rl_vc_ieq(name, nl, "EMAIL"))
		return rl_vc_add_value(&c->email, &c->nemail, v, vl, NULL, "EMAIL", c->line, lno);
	return RL_OK;           /* PHOTO, X-..., and the rest */
}

/* One unfolded content line s[0..n) (NUL-terminated) that began on line lno. */
static int rl_vc_line(rl_vc_state *st, const char *s, size_t n, long lno)
{
	char ex[RL_VC_EXCERPT + 4];
	size_t i = 0, ns, nl, bad;
	const char *v;
	size_t vl;
	int rc;

	bad = rl_utf8_bad((const unsigned char *)s, n);
	if (bad < n) {
		if (s[bad] == '\0')
			return rl_error_set(RL_EINVALID, "line %ld: NUL byte", lno);
		return rl_error_set(RL_EINVALID, "line %ld: invalid UTF-8 (byte 0x%02X)",
				    lno, (unsigned char)s[bad]);
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == n)
		return RL_OK;   /* blank lines between cards are common */
	rl_vc_excerpt(ex, s, n);
	if (!memchr(s, ':', n))
		return rl_error_set(RL_EINVALID, "line %ld: missing ':' in \"%s\"", lno, ex);

	/* [group.]name */
	i = 0;
	ns = i;
	while (i < n && rl_vc_name_char((unsigned char)s[i]))
		i++;
	if (i < n && s[i] == '.' && i > ns) {
		ns = ++i;
		while (i < n && rl_vc_name_char((unsigned char)s[i]))
			i++;
	}
	nl = i - ns;
	if (nl == 0 || i == n || (s[i] != ';' && s[i] != ':'))
		return rl_error_set(RL_EINVALID, "line %ld: bad property name in \"%s\"", lno, ex);

	/* *(;name[=value *(,value)]) — values may be "quoted" */
	while (s[i] == ';') {
		size_t ps = ++i, pnl;

		while (i < n && rl_vc_name_char((unsigned char)s[i]))
			i++;
		pnl = i - ps;
		if (pnl == 0)
			return rl_error_set(RL_EINVALID, "line %ld: bad parameter in \"%s\"", lno, ex);
		if (i < n && s[i] == '=') {
			do {
				size_t vs;

				i++;
				if (i < n && s[i] == '"') {
					const char *q = memchr(s + i + 1, '"', n - i - 1);

					if (!q)
						return rl_error_set(RL_EINVALID,
								    "line %ld: unterminated quoted parameter value in \"%s\"",
								    lno, ex);
					vs = i + 1;
					i = (size_t)(q - s) + 1;
					rc = rl_vc_param(s + ps, pnl, s + vs, i - 1 - vs, lno);
				} else {
					vs = i;
					while (i < n && s[i] != ',' && s[i] != ';' && s[i] != ':' && s[i] != '"')
						i++;
					rc = rl_vc_param(s + ps, pnl, s + vs, i - vs, lno);
				}
				if (rc)
					return rc;
			} while (i < n && s[i] == ',');
		} else {
			/* 2.1 style bare value ("TEL;CELL:") */
			rc = rl_vc_param(s + ps, pnl, "", 0, lno);
			if (rc)
				return rc;
		}
		if (i == n || (s[i] != ';' && s[i] != ':'))
			return rl_error_set(RL_EINVALID, "line %ld: bad parameter in \"%s\"", lno, ex);
	}
	v = s + i + 1;          /* s[i] == ':' */
	vl = n - i - 1;

	if (rl_vc_ieq(s + ns, nl, "BEGIN")) {
		const char *t = v;
		size_t tl = vl;

		rl_vc_trim_span(&t, &tl);
		if (!rl_vc_ieq(t, tl, "VCARD"))
			return rl_error_set(RL_EINVALID, "line %ld: unexpected \"%s\"", lno, ex);
		if (st->in_card)
			return rl_error_set(RL_EINVALID,
					    "line %ld: BEGIN:VCARD inside the card begun on line %ld (missing END:VCARD?)",
					    lno, st->cur.line);
		st->in_card = 1;
		st->cur.line = lno;
		return RL_OK;
	}
	if (!st->in_card)
		return rl_error_set(RL_EINVALID,
				    "line %ld: \"%s\" outside BEGIN:VCARD ... END:VCARD", lno, ex);
	if (rl_vc_ieq(s + ns, nl, "END")) {
		const char *t = v;
		size_t tl = vl;

		rl_vc_trim_span(&t, &tl);
		if (!rl_vc_ieq(t, tl, "VCARD"))
			return rl_error_set(RL_EINVALID, "line %ld: unexpected \"%s\"", lno, ex);
		return rl_vc_end_card(st);
	}
	return rl_vc_apply(st, s + ns, nl, v, vl, lno);
}

int rl_vcard_parse(rl_vcard **cards, size_t *ncards, const char *buf, size_t len)
{
	rl_vc_state st;
	rl_vc_buf lb = { NULL, 0, 0 };
	size_t pos = 0;
	long lno = 1, start = 0;
	int have = 0, rc = RL_OK;

	memset(&st, 0, sizeof(st));
	*cards = NULL;
	*ncards = 0;
	if (len > RL_MAX_VCARD_FILE_BYTES)
		return rl_error_set(RL_ETOOBIG, "vCard file is larger than %d bytes",
				    RL_MAX_VCARD_FILE_BYTES);
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;

	while (pos < len) {
		size_t b = pos, e = pos;

		while (e < len && buf[e] != '\r' && buf[e] != '\n')
			e++;
		pos = e;
		if (pos < len)
			pos += (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n') ? 2 : 1;

		if (have && b < e && (buf[b] == ' ' || buf[b] == '\t')) {
			/* folded: drop the line break and one white space */
			b++;
		} else {
			if (have) {
				rc = rl_vc_line(&st, lb.p, lb.len, start);
				if (rc)
					goto cleanup;
			}
			lb.len = 0;
			start = lno;
			have = 1;
		}
		rc = rl_vc_add(&lb, buf + b, e - b, RL_MAX_VCARD_LINE_BYTES);
		if (rc == RL_ETOOBIG)
			rc = rl_error_set(RL_ETOOBIG, "line %ld: unfolded line longer than %d bytes",
					  start, RL_MAX_VCARD_LINE_BYTES);
		if (rc)
			goto cleanup;
		lno++;
	}
	if (have) {
		rc = rl_vc_line(&st, lb.p, lb.len, start);
		if (rc)
			goto cleanup;
	}
	if (st.in_card) {
		rc = rl_error_set(RL_EINVALID,
				  "line %ld: BEGIN:VCARD has no END:VCARD before the end of the input (line %ld)",
				  st.cur.line, lno - 1);
		goto cleanup;
	}
	*cards = st.cards;
	*ncards = st.ncards;
	st.cards = NULL;
	st.ncards = 0;
cleanup:
	rl_vc_state_free(&st);
	free(lb.p);
	return rc;
}

/* --- writing ------------------------------------------------------------ */

/* Content lines are built in memory; no value comes near this. */
#define RL_VC_OUT_MAX (SIZE_MAX / 4)

static int rl_vc_put(rl_vc_buf *b, const char *s)
{
	return rl_vc_add(b, s, strlen(s), RL_VC_OUT_MAX);
}

/* Append s escaped as a text value: \ , ; and line breaks. */
static int rl_vc_put_esc(rl_vc_buf *b, const char *s, size_t n)
{
	size_t i, run = 0;
	int rc = RL_OK;

	for (i = 0; i < n && !rc; i++) {
		const char *esc = NULL;

		switch (s[i]) {
		case '\\':
			esc = "\\\\";
			break;
		case ',':
			esc = "\\,";
			break;
		case ';':
			esc = "\\;";
			break;
		case '\r':
			if (i + 1 < n && s[i + 1] == '\n') {
				/* CRLF is one line break: drop the CR, the LF
				 * is escaped next */
				rc = rl_vc_add(b, s + run, i - run, RL_VC_OUT_MAX);
				run = i + 1;
				continue;
			}
			esc = "\\n";
			break;
		case '\n':
			esc = "\\n";
			break;
		default:
			continue;
		}
		rc = rl_vc_add(b, s + run, i - run, RL_VC_OUT_MAX);
		if (!rc)
			rc = rl_vc_put(b, esc);
		run = i + 1;
	}
	if (!rc)
		rc = rl_vc_add(b, s + run, n - run, RL_VC_OUT_MAX);
	return rc;
}

/* Write b as one content line folded at RL_VC_FOLD octets (continuations
 * begin with a space, counted in the 75), never inside a UTF-8 sequence. */
static void rl_vc_emit(FILE *f, rl_vc_buf *b)
{
	const char *s = b->p;
	size_t n = b->len;
	int first = 1;

	do {
		size_t room = first ? RL_VC_FOLD : RL_VC_FOLD - 1;
		size_t k = n;

		if (k > room) {
			size_t back = 0;

			k = room;
			while (back < 3 && ((unsigned char)s[k] & 0xC0) == 0x80) {
				k--;
				back++;
			}
			if (((unsigned char)s[k] & 0xC0) == 0x80)
				k = room;       /* not UTF-8 after all: cut anyway */
		}
		if (!first)
			putc(' ', f);
		fwrite(s, 1, k, f);
		fputs("\r\n", f);
		s += k;
		n -= k;
		first = 0;
	} while (n > 0);
	b->len = 0;
}

/* A property line "name:escaped(value)". */
static int rl_vc_text_line(FILE *f, rl_vc_buf *b, const char *name, const char *value)
{
	int rc = rl_vc_put(b, name);

	if (!rc)
		rc = rl_vc_put_esc(b, value, strlen(value));
	if (!rc)
		rl_vc_emit(f, b);
	return rc;
}

/* A phone number that can go into a tel: URI unchanged. */
static int rl_vc_tel_uri_safe(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.' ||
		      *s == '(' || *s == ')'))
			return 0;
	return 1;
}

int rl_vcard_write(FILE *f, const rl_vcard *card, int version)
{
	rl_vc_buf b = { NULL, 0, 0 };
	const char *fn = card->fn, *sp;
	size_t i;
	int rc;

	if (version != 3 && version != 4)
		return rl_error_set(RL_EINVALID, "vCard version %d is not supported (3 or 4)", version);
	if (!fn || !*fn)
		return rl_error_set(RL_EINVALID, "a vCard needs a name (FN)");

	rc = rl_vc_put(&b, "BEGIN:VCARD");
	if (rc)
		goto cleanup;
	rl_vc_emit(f, &b);
	rc = rl_vc_put(&b, version == 3 ? "VERSION:3.0" : "VERSION:4.0");
	if (rc)
		goto cleanup;
	rl_vc_emit(f, &b);
	rc = rl_vc_text_line(f, &b, "FN:", fn);
	if (rc)
		goto cleanup;

	/* N: family;given;;; split at the last space; one word is a given
	 * name (as with Indonesian mononyms) */
	sp = strrchr(fn, ' ');
	rc = rl_vc_put(&b, "N:");
	if (!rc && sp)
		rc = rl_vc_put_esc(&b, sp + 1, strlen(sp + 1));
	if (!rc)
		rc = rl_vc_put(&b, ";");
	if (!rc)
		rc = rl_vc_put_esc(&b, fn, sp ? (size_t)(sp - fn) : strlen(fn));
	if (!rc)
		rc = rl_vc_put(&b, ";;;");
	if (rc)
		goto cleanup;
	rl_vc_emit(f, &b);

	if (card->org && (rc = rl_vc_text_line(f, &b, "ORG:", card->org)))
		goto cleanup;
	if (card->title && (rc = rl_vc_text_line(f, &b, "TITLE:", card->title)))
		goto cleanup;
	for (i = 0; i < card->ntel; i++) {
		const char *t = card->tel[i];

		if (!t)
			continue;
		if (version == 3)
			rc = rl_vc_text_line(f, &b, "TEL;TYPE=CELL:", t);
		else if (rl_vc_tel_uri_safe(t))
			rc = rl_vc_text_line(f, &b, "TEL;VALUE=uri;TYPE=cell:tel:", t);
		else    /* 4.0 still allows free text, which needs no URI escaping */
			rc = rl_vc_text_line(f, &b, "TEL;TYPE=cell:", t);
		if (rc)
			goto cleanup;
	}
	for (i = 0; i < card->nemail; i++) {
		if (card->email[i] && (rc = rl_vc_text_line(f, &b, "EMAIL:", card->email[i])))
			goto cleanup;
	}
	if (card->city) {
		rc = rl_vc_put(&b, "ADR:;;;");
		if (!rc)
			rc = rl_vc_put_esc(&b, card->city, strlen(card->city));
		if (!rc)
			rc = rl_vc_put(&b, ";;;");
		if (rc)
			goto cleanup;
		rl_vc_emit(f, &b);
	}
	if (card->note && (rc = rl_vc_text_line(f, &b, "NOTE:", card->note)))
		goto cleanup;
	if (card->uid && (rc = rl_vc_text_line(f, &b, "UID:", card->uid)))
		goto cleanup;
	rc = rl_vc_put(&b, "END:VCARD");
	if (rc)
		goto cleanup;
	rl_vc_emit(f, &b);
	if (ferror(f))
		rc = rl_error_set(RL_EIO, "writing vCard failed: %s", strerror(errno));
cleanup:
	if (rc == RL_ETOOBIG)
		rc = rl_error_set(RL_ENOMEM, "vCard value too large to write");
	free(b.p);
	return rc;
}
