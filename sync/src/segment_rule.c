/*
 * segment_rule.c — the rule language of saved segments: lexer, recursive-
 * descent parser, AST and evaluator (grammar and meaning in segment_rule.h).
 *
 * The input is checked whole first (length, UTF-8, control characters), so
 * the lexer only ever sees bounded, valid text. Each grammar rule is one
 * function; recursion goes through `not` and `(` only and is counted
 * against SR_MAX_DEPTH. Every error is reported at the byte offset of the
 * token at fault and turned into line:column (characters) once, when the
 * message is made; the first error stops the parse and frees what was
 * built. Nothing here touches the store: the caller hands facts in.
 */
#include "relasi/segment_rule.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "relasi/error.h"
#include "relasi/valid.h"

/* A day count in "N d ago" above a century means nothing. */
#define SR_MAX_DAYS_AGO 36500

enum field {
	F_NAME, F_INDUSTRY, F_CITY, F_REGION, F_EMAIL, F_OWNER, F_TAGS, F_TIER, F_RFM,
	F_LAST_VISIT, F_LAST_ACTIVITY, F_CREATED
};
enum fkind { K_TEXT, K_TAGS, K_TIER, K_RFM, K_DAY };

static const struct {
	const char *name;
	enum fkind kind;
} fields[] = {
	{ "name", K_TEXT }, { "industry", K_TEXT }, { "city", K_TEXT }, { "region", K_TEXT },
	{ "email", K_TEXT }, { "owner", K_TEXT }, { "tags", K_TAGS }, { "tier", K_TIER },
	{ "rfm", K_RFM }, { "last_visit", K_DAY }, { "last_activity", K_DAY }, { "created", K_DAY }
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#define FIELD_LIST "name, industry, city, region, email, owner, tags, tier, rfm, " \
	"last_visit, last_activity, created"

enum op {
	OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOT_IN, OP_HAS, OP_CONTAINS,
	OP_EMPTY, OP_NOT_EMPTY
};

struct value {
	char *text;        /* K_TEXT, K_TAGS, K_TIER (owned) */
	int index;         /* K_TIER: bound tier (-1 unbound); K_RFM: segment */
	int relative;      /* K_DAY: 1 = today - day days */
	int64_t day;       /* K_DAY */
	size_t off;        /* where it was written (tier errors come later) */
};

enum nkind { N_AND, N_OR, N_NOT, N_TEST };

struct node {
	enum nkind kind;
	struct node *a, *b;       /* N_AND, N_OR: a, b; N_NOT: a */
	enum field field;
	enum op op;
	struct value *vals;
	size_t nvals;
};

struct sr_rule {
	struct node *root;
	char *text;               /* a copy, for positions in late errors */
	size_t len;
};

/* ---- tokens ------------------------------------------------------------------- */

enum tok {
	T_EOF, T_LPAREN, T_RPAREN, T_COMMA, T_OP, T_STRING, T_WORD, T_DATE, T_DURATION
};

struct token {
	enum tok type;
	size_t off, end;          /* bytes [off, end) of the source */
	enum op op;               /* T_OP */
	char *str;                /* T_STRING: the decoded text (owned by the parser) */
	int64_t n;                /* T_DATE: day; T_DURATION: days */
};

struct parser {
	const char *s;
	size_t len, pos;
	struct token tok;         /* the current token */
	int depth;
};

/* Line and column (characters, from 1) of byte offset off. */
static void position(const char *s, size_t len, size_t off, int *line, int *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < len; i++) {
		if (s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)s[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static int fail_at(const char *s, size_t len, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_at(const char *s, size_t len, size_t off, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int line, col;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	position(s, len, off, &line, &col);
	return rl_error_set(RL_EINVALID, "rule:%d:%d: %s", line, col, msg);
}

#define FAIL(p, off, ...) fail_at((p)->s, (p)->len, (off), __VA_ARGS__)

/* The source of a token for a message: at most 40 bytes, cut on a
 * character boundary, so a message stays short and valid UTF-8. */
static void tok_text(const struct parser *p, const struct token *t, char out[48])
{
	size_t n = t->end - t->off;

	if (t->type == T_EOF) {
		snprintf(out, 48, "the end");
		return;
	}
	if (n > 40) {
		n = 40;
		while (n > 0 && ((unsigned char)p->s[t->off + n] & 0xc0) == 0x80)
			n--;
	}
	snprintf(out, 48, "'%.*s'", (int)n, p->s + t->off);
}

static int is_word_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int is_word_char(unsigned char c)
{
	return is_word_start(c) || (c >= '0' && c <= '9') || c == '-';
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* "YYYY-MM-DD" at s (10 bytes available): its day, or SR_NO_DAY. */
static int64_t parse_date10(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int i, y, m, d;

	for (i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : !is_digit((unsigned char)s[i]))
			return SR_NO_DAY;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return SR_NO_DAY;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return SR_NO_DAY;
	return rl_days_from_civil(y, (unsigned)m, (unsigned)d);
}

int64_t sr_day_of(const char *s)
{
	if (!s || strlen(s) < 10)
		return SR_NO_DAY;
	return parse_date10(s);
}

/* Read the next token into p->tok. */
static int next(struct parser *p)
{
	const char *s = p->s;
	struct token *t = &p->tok;
	unsigned char c;

	free(t->str);
	memset(t, 0, sizeof(*t));
	while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' ||
				   s[p->pos] == '\r'))
		p->pos++;
	t->off = p->pos;
	if (p->pos >= p->len) {
		t->type = T_EOF;
		t->end = p->pos;
		return RL_OK;
	}
	c = (unsigned char)s[p->pos];
	switch (c) {
	case '(': t->type = T_LPAREN; p->pos++; break;
	case ')': t->type = T_RPAREN; p->pos++; break;
	case ',': t->type = T_COMMA; p->pos++; break;
	case '=': t->type = T_OP; t->op = OP_EQ; p->pos++; break;
	case '!':
		if (p->pos + 1 < p->len && s[p->pos + 1] == '=') {
			t->type = T_OP;
			t->op = OP_NE;
			p->pos += 2;
			break;
		}
		return FAIL(p, t->off, "'!' must be followed by '=' (not equal: !=)");
	case '<':
	case '>':
		t->type = T_OP;
		p->pos++;
		if (p->pos < p->len && s[p->pos] == '=') {
			t->op = c == '<' ? OP_LE : OP_GE;
			p->pos++;
		} else {
			t->op = c == '<' ? OP_LT : OP_GT;
		}
		break;
	case '"': {
		size_t cap = 0, n = 0;
		p->pos++;
		/* The decoded text is never longer than the source. */
		cap = p->len - p->pos + 1;
		if (!(t->str = malloc(cap)))
			return rl_error_set(RL_ENOMEM, "out of memory");
		for (;;) {
			if (p->pos >= p->len)
				return FAIL(p, t->off, "unterminated string (a closing '\"' is missing)");
			c = (unsigned char)s[p->pos];
			if (c == '"') {
				p->pos++;
				break;
			}
			if (c < 0x20)
				return FAIL(p, p->pos, "a string cannot hold a line break or a "
					    "control character");
			if (c == '\\') {
				if (p->pos + 1 >= p->len || (s[p->pos + 1] != '"' && s[p->pos + 1] != '\\'))
					return FAIL(p, p->pos, "unknown escape in a string "
						    "(only \\\" and \\\\)");
				p->pos++;
				c = (unsigned char)s[p->pos];
			}
			t->str[n++] = (char)c;
			p->pos++;
		}
		t->str[n] = '\0';
		t->type = T_STRING;
		break;
	}
	default:
		if (is_digit(c)) {
			size_t start = p->pos;
			int64_t v = 0;
			if (p->len - start >= 10 && parse_date10(s + start) != SR_NO_DAY &&
			    (p->len - start == 10 || !is_word_char((unsigned char)s[start + 10]))) {
				t->type = T_DATE;
				t->n = parse_date10(s + start);
				p->pos += 10;
				break;
			}
			while (p->pos < p->len && is_digit((unsigned char)s[p->pos])) {
				if (v <= SR_MAX_DAYS_AGO)
					v = v * 10 + (s[p->pos] - '0');
				p->pos++;
			}
			if (p->pos < p->len && s[p->pos] == '-') {
				t->end = p->pos;
				return FAIL(p, start, "not a date (YYYY-MM-DD, a real day)");
			}
			if (p->pos < p->len && (s[p->pos] == 'd' || s[p->pos] == 'w') &&
			    (p->pos + 1 == p->len || !is_word_char((unsigned char)s[p->pos + 1]))) {
				if (s[p->pos] == 'w')
					v *= 7;
				p->pos++;
				if (v > SR_MAX_DAYS_AGO)
					return FAIL(p, start, "at most %d days ago", SR_MAX_DAYS_AGO);
				t->type = T_DURATION;
				t->n = v;
				break;
			}
			return FAIL(p, start, "a number needs a unit: 30d ago (days) or 4w ago (weeks)");
		}
		if (is_word_start(c)) {
			while (p->pos < p->len && is_word_char((unsigned char)s[p->pos]))
				p->pos++;
			t->type = T_WORD;
			break;
		}
		return FAIL(p, t->off, "unexpected character '%c'", c);
	}
	t->end = p->pos;
	return RL_OK;
}

/* Is the current token the keyword kw (any case)? */
static int is_kw(const struct parser *p, const char *kw)
{
	size_t n = strlen(kw), i;

	if (p->tok.type != T_WORD || p->tok.end - p->tok.off != n)
		return 0;
	for (i = 0; i < n; i++) {
		char c = p->s[p->tok.off + i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != kw[i])
			return 0;
	}
	return 1;
}

/* ---- AST -------------------------------------------------------------------- */

static void node_free(struct node *n)
{
	size_t i;

	if (!n)
		return;
	node_free(n->a);
	node_free(n->b);
	for (i = 0; i < n->nvals; i++)
		free(n->vals[i].text);
	free(n->vals);
	free(n);
}

static struct node *node_new(enum nkind kind)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		rl_error_set(RL_ENOMEM, "out of memory");
	else
		n->kind = kind;
	return n;
}

/* ASCII case-insensitive equality of a and the n bytes at b, '_' and '-'
 * in b matching ' ' in a (RFM segment names written as words). */
static int segment_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char x = a[i], y = b[i];
		if (!x)
			return 0;
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if ((y == '_' || y == '-') && x == ' ')
			continue;
		if (x != y)
			return 0;
	}
	return a[n] == '\0';
}

/* The current token as a value of field kind k, into v; advances. */
static int parse_value(struct parser *p, enum fkind k, const char *fname, const char *after,
		       struct value *v)
{
	struct token *t = &p->tok;
	char shown[48];
	int error;

	v->off = t->off;
	v->index = -1;
	tok_text(p, t, shown);
	if (t->type == T_EOF || t->type == T_LPAREN || t->type == T_RPAREN ||
	    t->type == T_COMMA || t->type == T_OP ||
	    (t->type == T_WORD && (is_kw(p, "and") || is_kw(p, "or"))))
		return FAIL(p, t->off, "expected a value after '%s'", after);
	if (k == K_DAY) {
		if (t->type == T_DATE) {
			v->day = t->n;
		} else if (t->type == T_WORD && is_kw(p, "today")) {
			v->relative = 1;
			v->day = 0;
		} else if (t->type == T_DURATION) {
			v->relative = 1;
			v->day = t->n;
			tok_text(p, t, shown);
			if ((error = next(p)) < 0)
				return error;
			if (!is_kw(p, "ago"))
				return FAIL(p, p->tok.off, "expected 'ago' after %s", shown);
		} else {
			return FAIL(p, t->off, "'%s' compares with a day (2026-01-31, 30d ago, 2w ago, "
				    "today), not %s", fname, shown);
		}
		return next(p);
	}
	if (t->type != T_STRING && t->type != T_WORD)
		return FAIL(p, t->off, "'%s' compares with a word or a \"quoted text\", not %s",
			    fname, shown);
	if (k == K_RFM) {
		const char *src = t->type == T_STRING ? t->str : p->s + t->off;
		size_t n = t->type == T_STRING ? strlen(t->str) : t->end - t->off;
		int i;
		for (i = 0; i < SR_RFM_SEGMENTS; i++)
			if (segment_eq(mk_rfm_segment_names[i], src, n))
				break;
		if (i == SR_RFM_SEGMENTS)
			return FAIL(p, t->off, "unknown RFM segment %s (champions, loyal, potential, "
				    "new, at_risk, cannot_lose, hibernating, lost)", shown);
		v->index = i;
		return next(p);
	}
	if (t->type == T_STRING) {
		v->text = t->str;          /* ownership moves to the value */
		t->str = NULL;
	} else {
		size_t n = t->end - t->off;
		if (!(v->text = malloc(n + 1)))
			return rl_error_set(RL_ENOMEM, "out of memory");
		memcpy(v->text, p->s + t->off, n);
		v->text[n] = '\0';
	}
	return next(p);
}

static int parse_or(struct parser *p, struct node **out);

static const char *op_name(enum op op)
{
	static const char *const names[] = { "=", "!=", "<", "<=", ">", ">=", "in", "not in",
					     "has", "contains", "is empty", "is not empty" };
	return names[op];
}

/* test = FIELD op value | FIELD [not] in (...) | FIELD has v | FIELD contains v
 *      | FIELD is [not] empty */
static int parse_test(struct parser *p, struct node **out)
{
	struct node *n = NULL;
	char shown[48], fname[32];
	size_t i, opoff;
	enum fkind k;
	int error;

	*out = NULL;
	tok_text(p, &p->tok, shown);
	if (p->tok.type != T_WORD)
		return FAIL(p, p->tok.off, "expected a field name, '(' or 'not', found %s", shown);
	for (i = 0; i < NFIELDS; i++)
		if (is_kw(p, fields[i].name))
			break;
	if (i == NFIELDS)
		return FAIL(p, p->tok.off, "unknown field %s (" FIELD_LIST ")", shown);
	k = fields[i].kind;
	snprintf(fname, sizeof(fname), "%s", fields[i].name);
	if (!(n = node_new(N_TEST)))
		return RL_ENOMEM;
	n->field = (enum field)i;
	if ((error = next(p)) < 0)
		goto cleanup;

	opoff = p->tok.off;
	if (p->tok.type == T_OP) {
		n->op = p->tok.op;
	} else if (is_kw(p, "in")) {
		n->op = OP_IN;
	} else if (is_kw(p, "has")) {
		n->op = OP_HAS;
	} else if (is_kw(p, "contains")) {
		n->op = OP_CONTAINS;
	} else if (is_kw(p, "not")) {
		if ((error = next(p)) < 0)
			goto cleanup;
		if (!is_kw(p, "in")) {
			error = FAIL(p, p->tok.off, "expected 'in' after '%s not'", fname);
			goto cleanup;
		}
		n->op = OP_NOT_IN;
	} else if (is_kw(p, "is")) {
		if ((error = next(p)) < 0)
			goto cleanup;
		n->op = OP_EMPTY;
		if (is_kw(p, "not")) {
			n->op = OP_NOT_EMPTY;
			if ((error = next(p)) < 0)
				goto cleanup;
		}
		if (!is_kw(p, "empty")) {
			error = FAIL(p, p->tok.off, "expected 'empty' after 'is'");
			goto cleanup;
		}
		error = next(p);
		goto cleanup;
	} else {
		tok_text(p, &p->tok, shown);
		error = FAIL(p, p->tok.off, "expected an operator after '%s' (= != < <= > >= in "
			     "has contains is), found %s", fname, shown);
		goto cleanup;
	}

	/* Which operators each kind of field takes. */
	{
		const char *why = NULL;
		switch (k) {
		case K_TEXT:
			if (n->op != OP_EQ && n->op != OP_NE && n->op != OP_IN && n->op != OP_NOT_IN &&
			    n->op != OP_CONTAINS)
				why = "= != in contains, is empty";
			break;
		case K_TAGS:
			if (n->op != OP_HAS)
				why = "has TAG, is empty";
			break;
		case K_TIER:
		case K_RFM:
			if (n->op != OP_EQ && n->op != OP_NE && n->op != OP_IN && n->op != OP_NOT_IN)
				why = "= != in, is empty";
			break;
		case K_DAY:
			if (n->op == OP_IN || n->op == OP_NOT_IN || n->op == OP_HAS ||
			    n->op == OP_CONTAINS)
				why = "= != < <= > >= with a day, is empty";
			break;
		}
		if (why) {
			error = FAIL(p, opoff, "'%s' does not take '%s' (it takes %s)", fname,
				     op_name(n->op), why);
			goto cleanup;
		}
	}
	if ((error = next(p)) < 0)
		goto cleanup;

	if (n->op == OP_IN || n->op == OP_NOT_IN) {
		size_t cap = 4;
		if (p->tok.type != T_LPAREN) {
			error = FAIL(p, p->tok.off, "expected '(' after 'in': in (A, B)");
			goto cleanup;
		}
		if ((error = next(p)) < 0)
			goto cleanup;
		if (!(n->vals = calloc(cap, sizeof(*n->vals)))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		for (;;) {
			if (n->nvals == SR_MAX_LIST) {
				error = FAIL(p, p->tok.off, "more than %d values in one list",
					     SR_MAX_LIST);
				goto cleanup;
			}
			if (n->nvals == cap) {
				struct value *nv = realloc(n->vals, cap * 2 * sizeof(*nv));
				if (!nv) {
					error = rl_error_set(RL_ENOMEM, "out of memory");
					goto cleanup;
				}
				memset(nv + cap, 0, cap * sizeof(*nv));
				n->vals = nv;
				cap *= 2;
			}
			n->nvals++;
			if ((error = parse_value(p, k, fname, n->nvals == 1 ? "(" : ",",
						 &n->vals[n->nvals - 1])) < 0)
				goto cleanup;
			if (p->tok.type == T_RPAREN)
				break;
			if (p->tok.type != T_COMMA) {
				tok_text(p, &p->tok, shown);
				error = FAIL(p, p->tok.off, "expected ',' or ')' in the list, found %s",
					     shown);
				goto cleanup;
			}
			if ((error = next(p)) < 0)
				goto cleanup;
		}
		error = next(p);
		goto cleanup;
	}
	if (!(n->vals = calloc(1, sizeof(*n->vals)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	n->nvals = 1;
	error = parse_value(p, k, fname, op_name(n->op), &n->vals[0]);
cleanup:
	if (error < 0) {
		node_free(n);
		return error;
	}
	*out = n;
	return RL_OK;
}

/* not = "not" not | "(" rule ")" | test */
static int parse_not(struct parser *p, struct node **out)
{
	struct node *n = NULL;
	size_t open;
	int error;

	*out = NULL;
	if (++p->depth > SR_MAX_DEPTH)
		return FAIL(p, p->tok.off, "the rule nests deeper than %d", SR_MAX_DEPTH);
	if (is_kw(p, "not")) {
		if ((error = next(p)) < 0)
			goto done;
		if (!(n = node_new(N_NOT))) {
			error = RL_ENOMEM;
			goto done;
		}
		if ((error = parse_not(p, &n->a)) < 0)
			goto done;
	} else if (p->tok.type == T_LPAREN) {
		int line, col;
		open = p->tok.off;
		if ((error = next(p)) < 0 || (error = parse_or(p, &n)) < 0)
			goto done;
		if (p->tok.type != T_RPAREN) {
			char shown[48];
			tok_text(p, &p->tok, shown);
			position(p->s, p->len, open, &line, &col);
			error = FAIL(p, p->tok.off, "expected ')' to close the '(' at %d:%d, found %s",
				     line, col, shown);
			goto done;
		}
		error = next(p);
	} else {
		error = parse_test(p, &n);
	}
done:
	p->depth--;
	if (error < 0) {
		node_free(n);
		return error;
	}
	*out = n;
	return RL_OK;
}

/* and = not { "and" not } ; or = and { "or" and } — left-associative. */
static int parse_chain(struct parser *p, struct node **out, int is_or)
{
	struct node *left = NULL, *right = NULL, *j;
	int error;

	*out = NULL;
	if ((error = is_or ? parse_chain(p, &left, 0) : parse_not(p, &left)) < 0)
		return error;
	while (is_kw(p, is_or ? "or" : "and")) {
		if ((error = next(p)) < 0 ||
		    (error = is_or ? parse_chain(p, &right, 0) : parse_not(p, &right)) < 0) {
			node_free(left);
			return error;
		}
		if (!(j = node_new(is_or ? N_OR : N_AND))) {
			node_free(left);
			node_free(right);
			return RL_ENOMEM;
		}
		j->a = left;
		j->b = right;
		left = j;
		right = NULL;
	}
	*out = left;
	return RL_OK;
}

static int parse_or(struct parser *p, struct node **out)
{
	return parse_chain(p, out, 1);
}

/* Whole input: bounded, valid UTF-8, no control characters but blanks. */
static int check_text(const char *s, size_t len)
{
	size_t i = 0;

	if (len > SR_MAX_BYTES)
		return fail_at(s, len, SR_MAX_BYTES, "the rule is longer than %d bytes", SR_MAX_BYTES);
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n, k;
		uint32_t cp;
		if (c < 0x80) {
			if ((c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return fail_at(s, len, i, "control character (byte 0x%02x) in the rule",
					       c);
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
		else return fail_at(s, len, i, "invalid UTF-8");
		for (k = 1; k <= n; k++) {
			if (i + k >= len || ((unsigned char)s[i + k] & 0xc0) != 0x80)
				return fail_at(s, len, i, "invalid UTF-8");
			cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return fail_at(s, len, i, "invalid UTF-8");
		i += n + 1;
	}
	return RL_OK;
}

int sr_parse(struct sr_rule **out, const char *text, size_t len)
{
	struct parser p = { 0 };
	struct sr_rule *r = NULL;
	struct node *root = NULL;
	int error;

	*out = NULL;
	if ((error = check_text(text, len)) < 0)
		return error;
	p.s = text;
	p.len = len;
	if ((error = next(&p)) < 0)
		goto cleanup;
	if (p.tok.type == T_EOF) {
		error = FAIL(&p, 0, "empty rule: give a test such as region = \"Jawa Barat\"");
		goto cleanup;
	}
	if ((error = parse_or(&p, &root)) < 0)
		goto cleanup;
	if (p.tok.type != T_EOF) {
		char shown[48];
		tok_text(&p, &p.tok, shown);
		error = FAIL(&p, p.tok.off, "unexpected %s after a complete test (join tests with "
			     "'and' or 'or')", shown);
		goto cleanup;
	}
	if (!(r = calloc(1, sizeof(*r))) || !(r->text = malloc(len + 1))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	r->len = len;
	r->root = root;
	root = NULL;
	*out = r;
	r = NULL;
cleanup:
	free(p.tok.str);
	node_free(root);
	if (r) {
		free(r->text);
		free(r);
	}
	return error;
}

void sr_free(struct sr_rule *r)
{
	if (!r)
		return;
	node_free(r->root);
	free(r->text);
	free(r);
}

/* ---- binding and needs ------------------------------------------------------------ */

static int is_ascii(const char *s, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

/* n bytes of s case-folded and composed (NFC), malloc'd; NULL when out
 * of memory (the text was checked as UTF-8 when it was stored or
 * parsed). "Any case" means any script's case, as a marketer typing
 * `city = "çanakkale"` or `name contains "KAFÉ"` expects, and an accent
 * typed as a combining mark meets the same accent stored precomposed. */
static char *fold_n(const char *s, size_t n)
{
	utf8proc_uint8_t *out = NULL;

	if (utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &out,
			 UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD) < 0)
		return NULL;
	return (char *)out;
}

/* Do n bytes of a and m bytes of b match, in any case? Pure ASCII text
 * (nearly all of it) is compared in place; other text folded. When
 * folding fails (out of memory) the bytes in ASCII case decide. `sub`:
 * does b occur in a, rather than equal it. */
static int text_match(const char *a, size_t n, const char *b, size_t m, int sub)
{
	char *fa, *fb;
	int r;

	if (is_ascii(a, n) && is_ascii(b, m)) {
		size_t i, k;
		for (i = 0; i + m <= n; i++) {
			for (k = 0; k < m; k++) {
				int x = (unsigned char)a[i + k], y = (unsigned char)b[k];
				if (x >= 'A' && x <= 'Z')
					x += 'a' - 'A';
				if (y >= 'A' && y <= 'Z')
					y += 'a' - 'A';
				if (x != y)
					break;
			}
			if (k == m && (sub || m == n))
				return 1;
			if (!sub)
				return 0;
		}
		return 0;
	}
	fa = fold_n(a, n);
	fb = fold_n(b, m);
	if (!fa || !fb)
		r = 0;
	else
		r = sub ? strstr(fa, fb) != NULL : strcmp(fa, fb) == 0;
	free(fa);
	free(fb);
	return r;
}

static int text_equal(const char *a, const char *b)
{
	return text_match(a, strlen(a), b, strlen(b), 0);
}

static int bind_node(const struct sr_rule *r, struct node *n, const char *const *names,
		     size_t count)
{
	size_t i, k;
	int error;

	if (!n)
		return RL_OK;
	if ((error = bind_node(r, n->a, names, count)) < 0 ||
	    (error = bind_node(r, n->b, names, count)) < 0)
		return error;
	if (n->kind != N_TEST || n->field != F_TIER)
		return RL_OK;
	for (i = 0; i < n->nvals; i++) {
		struct value *v = &n->vals[i];
		for (k = 0; k < count; k++)
			if (text_equal(names[k], v->text))
				break;
		if (k == count) {
			char list[256] = "";
			size_t used = 0;
			for (k = 0; k < count && used < sizeof(list); k++)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 k ? ", " : "", names[k]);
			return fail_at(r->text, r->len, v->off, "unknown tier '%.40s' (tiers: %s)",
				       v->text, list);
		}
		v->index = (int)k;
	}
	return RL_OK;
}

int sr_bind_tiers(struct sr_rule *r, const char *const *names, size_t n)
{
	return bind_node(r, r->root, names, n);
}

static unsigned needs_node(const struct node *n)
{
	if (!n)
		return 0;
	if (n->kind != N_TEST)
		return needs_node(n->a) | needs_node(n->b);
	switch (n->field) {
	case F_TIER: return SR_NEED_TIER;
	case F_RFM: return SR_NEED_RFM;
	case F_LAST_VISIT: return SR_NEED_VISIT;
	case F_LAST_ACTIVITY: return SR_NEED_ACTIVITY;
	default: return 0;
	}
}

unsigned sr_needs(const struct sr_rule *r)
{
	return needs_node(r->root);
}

/* ---- evaluation ------------------------------------------------------------------ */

static const char *text_of(const struct sr_facts *f, enum field field)
{
	switch (field) {
	case F_NAME: return f->name;
	case F_INDUSTRY: return f->industry;
	case F_CITY: return f->city;
	case F_REGION: return f->region;
	case F_EMAIL: return f->email;
	case F_OWNER: return f->owner;
	case F_TAGS: return f->tags;
	default: return NULL;
	}
}

static int64_t day_of_field(const struct sr_facts *f, enum field field)
{
	switch (field) {
	case F_LAST_VISIT: return f->last_visit;
	case F_LAST_ACTIVITY: return f->last_activity;
	case F_CREATED: return f->created;
	default: return SR_NO_DAY;
	}
}

/* Does needle occur in hay, in any case (text_match)? */
static int contains(const char *hay, const char *needle)
{
	return text_match(hay, strlen(hay), needle, strlen(needle), 1);
}

/* Is tag one of the comma-separated tags (blanks around each ignored)? */
static int has_tag(const char *tags, const char *tag)
{
	const char *p = tags;
	size_t tl = strlen(tag);

	while (*p) {
		const char *start, *end;
		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > start && text_match(start, (size_t)(end - start), tag, tl, 0))
			return 1;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int is_empty(const struct sr_facts *f, enum field field)
{
	const char *t;

	switch (field) {
	case F_TIER: return f->tier < 0;
	case F_RFM: return f->rfm == 0;
	case F_LAST_VISIT:
	case F_LAST_ACTIVITY:
	case F_CREATED:
		return day_of_field(f, field) == SR_NO_DAY;
	default:
		t = text_of(f, field);
		return !t || !*t;
	}
}

/* Does the (non-empty) fact equal value v? */
static int equals(const struct sr_facts *f, enum field field, const struct value *v)
{
	switch (field) {
	case F_TIER: return v->index >= 0 && f->tier == v->index;
	case F_RFM: return (f->rfm >> v->index) & 1u;
	default: return text_equal(text_of(f, field), v->text);
	}
}

static int eval_test(const struct node *n, const struct sr_facts *f, int64_t today)
{
	size_t i;

	if (n->op == OP_EMPTY)
		return is_empty(f, n->field);
	if (n->op == OP_NOT_EMPTY)
		return !is_empty(f, n->field);
	if (n->field == F_LAST_VISIT || n->field == F_LAST_ACTIVITY || n->field == F_CREATED) {
		/* Days compare as days: never through equals(), which reads text
		 * (a date field has none: `last_visit != today` read NULL, found
		 * by fuzz_rule). `!=` is not (=): an empty day matches it. */
		int64_t d, v = n->vals[0].relative ? today - n->vals[0].day : n->vals[0].day;
		if (is_empty(f, n->field))
			return n->op == OP_NE;
		d = day_of_field(f, n->field);
		switch (n->op) {
		case OP_EQ: return d == v;
		case OP_NE: return d != v;
		case OP_LT: return d < v;
		case OP_LE: return d <= v;
		case OP_GT: return d > v;
		case OP_GE: return d >= v;
		default: return 0;
		}
	}
	if (n->op == OP_NE)
		return is_empty(f, n->field) || !equals(f, n->field, &n->vals[0]);
	if (n->op == OP_NOT_IN) {
		if (is_empty(f, n->field))
			return 1;
		for (i = 0; i < n->nvals; i++)
			if (equals(f, n->field, &n->vals[i]))
				return 0;
		return 1;
	}
	if (is_empty(f, n->field))
		return 0;
	switch (n->op) {
	case OP_EQ:
		return equals(f, n->field, &n->vals[0]);
	case OP_IN:
		for (i = 0; i < n->nvals; i++)
			if (equals(f, n->field, &n->vals[i]))
				return 1;
		return 0;
	case OP_HAS:
		return has_tag(f->tags, n->vals[0].text);
	case OP_CONTAINS:
		return contains(text_of(f, n->field), n->vals[0].text);
	default:
		return 0;
	}
}

static int eval_node(const struct node *n, const struct sr_facts *f, int64_t today)
{
	switch (n->kind) {
	case N_AND: return eval_node(n->a, f, today) && eval_node(n->b, f, today);
	case N_OR: return eval_node(n->a, f, today) || eval_node(n->b, f, today);
	case N_NOT: return !eval_node(n->a, f, today);
	case N_TEST: return eval_test(n, f, today);
	}
	return 0;
}

int sr_eval(const struct sr_rule *r, const struct sr_facts *f, int64_t today)
{
	return eval_node(r->root, f, today);
}
