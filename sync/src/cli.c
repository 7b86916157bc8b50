/*
 * cli.c — the command framework of relasi and relasi-hub (relasi/cli.h):
 * dispatch by command words, option parsing, help, error reporting and the
 * output helpers.
 */
#include "relasi/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "relasi/jsonw.h"
#include "relasi/valid.h"

#include <utf8proc.h>

const char *cli_get(const struct cli_args *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->nopts; i++)
		if (strcmp(a->opts[i].name, name) == 0)
			return a->vals[i];
	return NULL;
}

struct rl_fieldval *cli_model_values(const struct cli_args *a, size_t *n, size_t extra)
{
	struct rl_fieldval *v = calloc(a->nopts + extra + 1, sizeof(*v));
	size_t i;

	*n = 0;
	if (!v)
		return NULL;
	for (i = 0; i < a->nmodel; i++) {
		if (!a->vals[i])
			continue;
		v[*n].field = a->opts[i].field;
		v[*n].text = a->vals[i];
		(*n)++;
	}
	return v;
}

/* The running program's name, for messages. */
static const char *cli_prog_name = "relasi";

int cli_fail(int error)
{
	const char *msg = rl_error_message();

	fprintf(stderr, "%s: %s\n", cli_prog_name, *msg ? msg : "unknown error");
	switch (error) {
	case RL_EUSAGE: return EXIT_USAGE;
	case RL_ENOTFOUND: return EXIT_NOTFOUND;
	case RL_EAMBIGUOUS: return EXIT_AMBIGUOUS;
	case RL_EINVALID: case RL_ETOOBIG: return EXIT_INVALID;
	case RL_EVERSION: return EXIT_VERSION;
	case RL_ESTORE: case RL_EIO: return EXIT_STORE;
	case RL_ETIMEOUT: case RL_ECLOSED: case RL_EAUTH: case RL_EPROTO:
	case RL_ENET: case RL_ECLOCK: case RL_EREUSED: case RL_EBUSY: return EXIT_NETWORK;
	case RL_EDENIED: return EXIT_DENIED;
	default: return 1;
	}
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (cmd)
		fprintf(stderr, "usage: %s %s %s\n(see '%s %s --help')\n", cli_prog_name,
			cmd->name, cmd->usage ? cmd->usage : "", cli_prog_name, cmd->name);
	return EXIT_USAGE;
}

int cli_option_error(int error, const char *opt)
{
	char msg[512];

	if (error != RL_EINVALID && error != RL_ETOOBIG)
		return error;
	snprintf(msg, sizeof(msg), "%s", rl_error_message());
	return rl_error_set(RL_EUSAGE, "--%s: %s", opt, msg);
}

int cli_print_json(json_t *j)
{
	char *s;

	if (!j)
		return rl_error_set(RL_ENOMEM, "out of memory");
	s = rl_json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return rl_error_set(RL_ENOMEM, "out of memory");
	puts(s);
	free(s);
	return RL_OK;
}

json_t *cli_row_json(sqlite3_stmt *st)
{
	json_t *o = json_object();
	int i, n = sqlite3_column_count(st);

	for (i = 0; o && i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		json_t *v;
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
		case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
		case SQLITE_NULL: v = json_null(); break;
		default: v = json_string((const char *)sqlite3_column_text(st, i)); break;
		}
		json_object_set_new(o, name, v ? v : json_null());
	}
	return o;
}

const char *cli_col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? s : "";
}

void cli_print_field(const char *name, const char *value)
{
	cli_print_labelled(name, 15, value);
}

void cli_print_labelled(const char *name, int width, const char *value)
{
	const char *nl;

	printf("  %-*s ", width, name);
	while ((nl = strchr(value, '\n'))) {
		printf("%.*s\n%*s", (int)(nl - value), value, width + 3, "");
		value = nl + 1;
	}
	printf("%s\n", value);
}

const char *cli_short_id(struct cli_ctx *ctx, const char *table, const char *id,
			 char buf[RL_ID_BUFSZ])
{
	const struct rl_table *t = rl_model_table(table);

	if (!id || !*id) {
		buf[0] = '\0';
		return buf;
	}
	if (!t || rl_record_short_id(ctx->store, t, id, buf) < 0)
		snprintf(buf, RL_ID_BUFSZ, "%s", id);
	return buf;
}

const char *cli_money(char *buf, size_t len, sqlite3_stmt *st, int amount_col, int currency_col)
{
	const char *cur = cli_col(st, currency_col);

	buf[0] = '\0';
	if (sqlite3_column_type(st, amount_col) == SQLITE_NULL)
		return buf;
	if (rl_money_format(buf, len, sqlite3_column_int64(st, amount_col), cur) < 0) {
		snprintf(buf, len, "%lld", (long long)sqlite3_column_int64(st, amount_col));
		return buf;
	}
	if (strlen(buf) + 5 < len) {
		strcat(buf, " ");
		strcat(buf, cur);
	}
	return buf;
}

int cli_emit(struct cli_ctx *ctx, sqlite3_stmt *st, const struct cli_view *v,
	     json_t *into, const char *key)
{
	struct cli_table *t = NULL;
	json_t *arr = NULL;
	const char **cells = NULL;
	char **bufs = NULL;
	char sid[RL_ID_BUFSZ];
	int rc, i, error = RL_OK;

	/* Each cell formats into its own buffer: 64 bytes holds any number,
	 * money or date we format; longer text comes straight from SQLite. */
	if (ctx->json ? !(arr = json_array())
		      : (!(t = cli_table_new((size_t)v->ncols, v->headers)) ||
			 !(cells = calloc((size_t)v->ncols, sizeof(*cells))) ||
			 !(bufs = calloc((size_t)v->ncols, sizeof(*bufs))))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; bufs && i < v->ncols; i++)
		if (!(bufs[i] = malloc(64))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (v->id_table)
			cli_short_id(ctx, v->id_table, cli_col(st, 0), sid);
		if (arr) {
			json_t *o = cli_row_json(st);
			if (v->id_table)
				json_object_set_new(o, "short_id", json_string(sid));
			if (v->json_extra)
				v->json_extra(ctx, st, o);
			json_array_append_new(arr, o);
			continue;
		}
		for (i = 0; i < v->ncols; i++) {
			const char *c = v->cell ? v->cell(ctx, st, i, bufs[i], 64) : NULL;
			cells[i] = c ? c : cli_col(st, i);
		}
		if (v->id_table)
			cells[0] = sid;
		if ((error = cli_table_add(t, cells)) < 0)
			goto cleanup;
	}
	if (rc != SQLITE_DONE) {
		error = rl_store_error(ctx->store, "reading rows");
		goto cleanup;
	}
	if (arr && into) {
		json_object_set(into, key, arr);
	} else if (arr) {
		error = cli_print_json(arr);
		arr = NULL;
	} else if (cli_table_rows(t) == 0 && v->empty) {
		printf("%s\n", v->empty);
	} else {
		cli_table_print(t, stdout);
	}
cleanup:
	sqlite3_reset(st);
	json_decref(arr);
	cli_table_free(t);
	for (i = 0; bufs && i < v->ncols; i++)
		free(bufs[i]);
	free(bufs);
	free(cells);
	return error;
}

int cli_write(struct cli_ctx *ctx, int (*fn)(struct cli_ctx *ctx, void *arg), void *arg)
{
	int error;

	if ((error = rl_store_begin(ctx->store)) < 0)
		return error;
	if ((error = fn(ctx, arg)) < 0) {
		rl_store_rollback(ctx->store);
		return error;
	}
	if ((error = rl_store_commit(ctx->store)) < 0) {
		rl_store_rollback(ctx->store);
		return error;
	}
	return RL_OK;
}

/* ---- text tables ---------------------------------------------------------- */

/* Cells wider than this are cut with "…" in terminal tables (JSON is whole). */
#define CLI_CELL_MAX 40

struct cli_table {
	size_t ncols, nrows, cap;
	char **cells;             /* nrows * ncols, row 0 = headers */
};

struct cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	if (cli_table_add(t, headers) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	size_t i;

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));
		if (!nc)
			return rl_error_set(RL_ENOMEM, "out of memory");
		t->cells = nc;
		t->cap = ncap;
	}
	for (i = 0; i < t->ncols; i++) {
		const char *c = cells[i] ? cells[i] : "";
		char *copy = strdup(c), *nl;
		if (!copy)
			return rl_error_set(RL_ENOMEM, "out of memory");
		while ((nl = strpbrk(copy, "\r\n\t")))
			*nl = ' ';
		t->cells[t->nrows * t->ncols + i] = copy;
	}
	t->nrows++;
	return RL_OK;
}

/* Columns a terminal gives one character (utf8proc_charwidth: 2 for CJK
 * and other wide characters, 0 for combining marks); its byte length in
 * *len. A byte that starts no UTF-8 character counts as one column. Code
 * points counted as columns misaligned every table that held a Chinese
 * name. */
static int char_width(const char *s, size_t *len)
{
	utf8proc_int32_t cp;
	utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s, -1, &cp);
	int w;

	if (n <= 0) {
		*len = 1;
		return 1;
	}
	*len = (size_t)n;
	w = utf8proc_charwidth(cp);
	return w < 0 ? 0 : w;
}

/* Display width of s in terminal columns. */
static size_t utf8_width(const char *s)
{
	size_t w = 0, len;

	for (; *s; s += len)
		w += (size_t)char_width(s, &len);
	return w;
}

/* Byte length of the longest prefix of s that fits in max columns (a wide
 * character is never cut in two); its width in *used. */
static size_t utf8_prefix(const char *s, size_t max, size_t *used)
{
	size_t i = 0, w = 0, len;
	int cw;

	while (s[i]) {
		cw = char_width(s + i, &len);
		if (w + (size_t)cw > max)
			break;
		w += (size_t)cw;
		i += len;
	}
	*used = w;
	return i;
}

void cli_table_print(struct cli_table *t, FILE *f)
{
	size_t *w = calloc(t->ncols, sizeof(*w));
	size_t r, c;

	if (!w)
		return;
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			size_t cw = utf8_width(t->cells[r * t->ncols + c]);
			if (cw > CLI_CELL_MAX)
				cw = CLI_CELL_MAX;
			if (cw > w[c])
				w[c] = cw;
		}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			size_t cw = utf8_width(cell);
			int last = c + 1 == t->ncols;
			if (cw > CLI_CELL_MAX) {
				size_t used;
				fprintf(f, "%.*s…", (int)utf8_prefix(cell, CLI_CELL_MAX - 1, &used), cell);
				cw = used + 1;
			} else {
				fputs(cell, f);
			}
			if (!last)
				fprintf(f, "%*s", (int)(w[c] - cw + 2), "");
		}
		fputc('\n', f);
	}
	free(w);
}

size_t cli_table_rows(const struct cli_table *t)
{
	return t->nrows - 1;
}

void cli_table_free(struct cli_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* ---- dispatch ---------------------------------------------------------------- */

static size_t name_words(const char *name)
{
	size_t n = 1;
	for (; *name; name++)
		if (*name == ' ')
			n++;
	return n;
}

/* Does cmd name equal argv[0..words)? */
static int name_matches(const char *name, char **argv, int argc, size_t words)
{
	size_t i;
	const char *p = name;

	if ((size_t)argc < words)
		return 0;
	for (i = 0; i < words; i++) {
		size_t len = strlen(argv[i]);
		if (strncmp(p, argv[i], len) != 0 || (p[len] != ' ' && p[len] != '\0'))
			return 0;
		p += len + (p[len] == ' ');
	}
	return 1;
}

static const struct cli_cmd *find_cmd(const struct cli_program *prog, char **argv, int argc,
				      size_t *words)
{
	const struct cli_cmd *best = NULL;
	size_t best_words = 0, t;

	for (t = 0; prog->tables[t]; t++) {
		const struct cli_cmd *c;
		for (c = prog->tables[t]; c->name; c++) {
			size_t w = name_words(c->name);
			if (w > best_words && name_matches(c->name, argv, argc, w)) {
				best = c;
				best_words = w;
			}
		}
	}
	*words = best_words;
	return best;
}

static void print_commands(const struct cli_program *prog, FILE *f, const char *group)
{
	size_t t, glen = group ? strlen(group) : 0, width = 16;
	const struct cli_cmd *c;

	/* One column wide enough for the longest name, so summaries line up. */
	for (t = 0; prog->tables[t]; t++)
		for (c = prog->tables[t]; c->name; c++)
			if (strlen(c->name) > width)
				width = strlen(c->name);
	for (t = 0; prog->tables[t]; t++) {
		for (c = prog->tables[t]; c->name; c++) {
			if (group && (strncmp(c->name, group, glen) != 0 || c->name[glen] != ' '))
				continue;
			fprintf(f, "  %-*s %s\n", (int)width, c->name, c->summary);
		}
	}
}

/* Does some command's name start with the word group followed by a space? */
static int is_group(const struct cli_program *prog, const char *group)
{
	size_t t, glen = strlen(group);
	const struct cli_cmd *c;

	for (t = 0; prog->tables[t]; t++)
		for (c = prog->tables[t]; c->name; c++)
			if (strncmp(c->name, group, glen) == 0 && c->name[glen] == ' ')
				return 1;
	return 0;
}

static void print_main_help(const struct cli_program *prog, FILE *f)
{
	fprintf(f, "%s\n\nusage: %s [--json] COMMAND [ARGS] [OPTIONS]\n\ncommands:\n",
		prog->intro, prog->name);
	print_commands(prog, f, NULL);
	fprintf(f, "\n%s", prog->outro);
}

static void print_cmd_help(const struct cli_program *prog, const struct cli_args *a)
{
	const struct cli_cmd *c = a->cmd;
	size_t i;

	printf("usage: %s %s %s\n\n%s\n", prog->name, c->name, c->usage ? c->usage : "",
	       c->summary);
	if (a->nopts)
		printf("\noptions:\n");
	for (i = 0; i < a->nopts; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", a->opts[i].name,
			 a->opts[i].has_arg ? " " : "",
			 a->opts[i].has_arg ? (a->opts[i].arg_name ? a->opts[i].arg_name : "VALUE") : "");
		printf("  %-24s %s\n", left, a->opts[i].help ? a->opts[i].help : "");
	}
	printf("  %-24s %s\n  %-24s %s\n", "--json", "machine-readable output",
	       "--help", "this help");
}

static void free_args(struct cli_args *a)
{
	size_t i;

	for (i = 0; i < a->nmodel; i++)
		free((char *)a->opts[i].name);
	free(a->opts);
	free(a->vals);
	free(a->pos);
	for (i = 0; i < a->njoined; i++)
		free(a->joined[i]);
	free(a->joined);
}

/* "--prefer a=b --prefer c=d" is "--prefer a=b,c=d" for an option whose
 * argument name ends in "...". */
static int join_value(struct cli_args *a, size_t k, const char *value)
{
	size_t len = strlen(a->vals[k]) + strlen(value) + 2;
	char **more = realloc(a->joined, (a->njoined + 1) * sizeof(*more));
	char *v;

	if (!more)
		return rl_error_set(RL_ENOMEM, "out of memory");
	a->joined = more;
	if (!(v = malloc(len)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	snprintf(v, len, "%s,%s", a->vals[k], value);
	a->joined[a->njoined++] = v;
	a->vals[k] = v;
	return RL_OK;
}

static int build_options(const struct cli_program *prog, struct cli_args *a)
{
	const struct cli_cmd *c = a->cmd;
	const struct cli_opt *extra = c->needs_store ? prog->store_opts : NULL;
	const struct rl_table *t = c->model_table ? rl_model_table(c->model_table) : NULL;
	size_t n = 0, i, cap = 0;

	for (i = 0; c->opts && c->opts[i].name; i++)
		cap++;
	for (i = 0; extra && extra[i].name; i++)
		cap++;
	if (t && c->model_mode != CLI_MODEL_NONE)
		cap += t->nfields;
	a->opts = calloc(cap + 1, sizeof(*a->opts));
	a->vals = calloc(cap + 1, sizeof(*a->vals));
	if (!a->opts || !a->vals)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (t && c->model_mode != CLI_MODEL_NONE) {
		for (i = 0; i < t->nfields; i++) {
			const struct rl_field *f = &t->fields[i];
			if (f->flags & RL_FF_SYSTEM)
				continue;
			char opt[64];
			a->opts[n].name = strdup(rl_model_option_name(f, opt, sizeof(opt)));
			if (!a->opts[n].name)
				return rl_error_set(RL_ENOMEM, "out of memory");
			a->opts[n].has_arg = 1;
			a->opts[n].arg_name = "VALUE";
			a->opts[n].help = f->help;
			a->opts[n].field = f->name;
			n++;
			a->nmodel = n;
		}
	}
	for (i = 0; c->opts && c->opts[i].name; i++)
		a->opts[n++] = c->opts[i];
	for (i = 0; extra && extra[i].name; i++)
		a->opts[n++] = extra[i];
	a->nopts = n;
	return RL_OK;
}

/* Parse argv (after the command words). Returns 0, EXIT_USAGE, or -1 for
 * --help (already printed). */
static int parse_args(const struct cli_program *prog, struct cli_args *a, int argc, char **argv,
		      int *json)
{
	int i, only_pos = 0;

	if (!(a->pos = calloc((size_t)argc + 1, sizeof(*a->pos))))
		return cli_fail(rl_error_set(RL_ENOMEM, "out of memory"));
	for (i = 0; i < argc; i++) {
		char *arg = argv[i];
		const char *eq, *value = NULL;
		size_t k, namelen;

		if (only_pos || arg[0] != '-' || arg[1] == '\0' ||
		    (arg[1] != '-' && !(arg[1] == 'h' && arg[2] == '\0'))) {
			/* "-6.2,106.8" style values are positional, not options */
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			print_cmd_help(prog, a);
			return -1;
		}
		if (strcmp(arg, "--json") == 0) {
			*json = 1;
			continue;
		}
		eq = strchr(arg + 2, '=');
		namelen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		for (k = 0; k < a->nopts; k++)
			if (strlen(a->opts[k].name) == namelen &&
			    strncmp(a->opts[k].name, arg + 2, namelen) == 0)
				break;
		if (k == a->nopts)
			return cli_usage_error(a->cmd, "unknown option '%.*s' for '%s'",
					       (int)namelen + 2, arg, a->cmd->name);
		if (a->opts[k].has_arg) {
			if (eq)
				value = eq + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else
				return cli_usage_error(a->cmd, "option '--%s' needs a value",
						       a->opts[k].name);
		} else {
			if (eq)
				return cli_usage_error(a->cmd, "option '--%s' takes no value",
						       a->opts[k].name);
			value = "1";
		}
		if (a->vals[k]) {
			size_t an = a->opts[k].arg_name ? strlen(a->opts[k].arg_name) : 0;
			int error;
			if (an < 3 || strcmp(a->opts[k].arg_name + an - 3, "...") != 0)
				return cli_usage_error(a->cmd, "option '--%s' given twice",
						       a->opts[k].name);
			if ((error = join_value(a, k, value)) < 0)
				return cli_fail(error);
			continue;
		}
		a->vals[k] = value;
	}
	if ((int)a->npos < a->cmd->min_pos)
		return cli_usage_error(a->cmd, "'%s' needs %s", a->cmd->name,
				       a->cmd->usage ? a->cmd->usage : "more arguments");
	if (a->cmd->max_pos >= 0 && (int)a->npos > a->cmd->max_pos)
		return cli_usage_error(a->cmd, "unexpected argument '%s'", a->pos[a->cmd->max_pos]);
	return 0;
}

int cli_main(const struct cli_program *prog, int argc, char **argv)
{
	struct cli_ctx ctx = { 0 };
	struct cli_args a = { 0 };
	const struct cli_cmd *cmd;
	size_t words;
	int first = 1, status = 0, error;

	cli_prog_name = prog->name;
	/* Before SQLite starts: nothing asks it for memory figures, and keeping
	 * them takes a process-wide mutex on every allocation it makes (with
	 * NOMUTEX connections, store.c: device CPU of a 200k-change push
	 * 2.2-2.5 -> 1.8-1.9 s, hub 2.1-2.5 -> 2.0-2.2 s). */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	while (first < argc && argv[first][0] == '-') {
		if (strcmp(argv[first], "--json") == 0) {
			ctx.json = 1;
		} else if (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
			print_main_help(prog, stdout);
			return 0;
		} else if (strcmp(argv[first], "--version") == 0) {
			printf("%s %s (schema %d)\n", prog->name, prog->version, rl_store_schema_latest());
			return 0;
		} else {
			fprintf(stderr, "%s: unknown option '%s'\n", prog->name, argv[first]);
			return EXIT_USAGE;
		}
		first++;
	}
	if (first >= argc) {
		print_main_help(prog, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[first], "help") == 0) {
		if (first + 1 < argc) {
			cmd = find_cmd(prog, argv + first + 1, argc - first - 1, &words);
			if (cmd) {
				a.cmd = cmd;
				if (build_options(prog, &a) == 0)
					print_cmd_help(prog, &a);
				free_args(&a);
				return 0;
			}
			print_commands(prog, stdout, argv[first + 1]);
			return 0;
		}
		print_main_help(prog, stdout);
		return 0;
	}
	cmd = find_cmd(prog, argv + first, argc - first, &words);
	if (!cmd) {
		/* "relasi deal" alone: list what the group offers. A word after
		 * a group's name ("report nosuch") is the input at fault: name it. */
		FILE *f = stderr;
		if (first + 1 < argc && argv[first + 1][0] != '-' && is_group(prog, argv[first]))
			fprintf(f, "%s: unknown command '%s %s'\n", prog->name, argv[first],
				argv[first + 1]);
		else
			fprintf(f, "%s: unknown command '%s'\n", prog->name, argv[first]);
		fprintf(f, "commands starting with '%s':\n", argv[first]);
		print_commands(prog, f, argv[first]);
		return EXIT_USAGE;
	}
	a.cmd = cmd;
	if ((error = build_options(prog, &a)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	status = parse_args(prog, &a, argc - first - (int)words, argv + first + words, &ctx.json);
	if (status == -1) {
		status = 0;
		goto done;
	}
	if (status)
		goto done;
	if (prog->prepare && (error = prog->prepare(&ctx, &a)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if ((error = cmd->run(&ctx, &a)) < 0)
		status = cli_fail(error);
	else
		status = error; /* a command may return a positive exit status */
done:
	if (fflush(stdout) != 0 && status == 0) {
		fprintf(stderr, "%s: writing output failed\n", prog->name);
		status = EXIT_STORE;
	}
	if (prog->release)
		prog->release(&ctx);
	rl_store_close(ctx.store);
	free(ctx.home);
	free(ctx.store_path);
	free_args(&a);
	return status;
}
