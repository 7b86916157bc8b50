/*
 * cmd_io.c — moving customer lists in and out: CSV import and export for
 * accounts, contacts, deals and activities with a column map, and vCard
 * (3.0 / 4.0) import and export for contacts.
 *
 * Import rules (README, "Using relasi": Importing):
 *  - The first row is the header. A column is matched to a field by --map
 *    ("Nama Toko=name,Kota=city"), else by its name (field name or option
 *    name, any case). Unknown columns are reported and ignored; "-" in a map
 *    ignores a column on purpose.
 *  - Every value is validated like the same value typed at `relasi add`.
 *  - A customer named in a contact's, deal's or activity's account column
 *    that does not exist yet is created (spreadsheets name customers, they
 *    do not carry ids); an ambiguous name is a bad row.
 *  - All-or-nothing by default: the first bad row is reported with its line
 *    number and nothing is written. --skip-bad imports the good rows (each
 *    row in its own savepoint) and lists the bad ones, or writes them to
 *    --report FILE as CSV.
 *  - Progress is shown on a terminal and nowhere else.
 * Deals go through deals_import.c (the same rules plus reps, stage names,
 * date formats and closed deals).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "relasi/csv.h"
#include "relasi/limits.h"
#include "relasi/outfile.h"
#include "relasi/valid.h"
#include "relasi/vcard.h"

static const char *const importable[] = { "accounts", "contacts", "deals", "activities", NULL };
static const char *const exportable[] = { "accounts", "contacts", "deals", NULL };

static const struct rl_table *io_table(const char *name, const char *const *allowed)
{
	const struct rl_table *t = rl_model_table(name);
	size_t len = strlen(name);
	int i;

	if (!t && len > 1 && name[len - 1] != 's') {
		char plural[64];
		snprintf(plural, sizeof(plural), "%ss", name);
		t = rl_model_table(plural);
	}
	if (!t)
		return NULL;
	for (i = 0; allowed[i]; i++)
		if (strcmp(allowed[i], t->name) == 0)
			return t;
	return NULL;
}

static int parse_delimiter(const char *s, int *out)
{
	if (!s) {
		*out = 0;
		return RL_OK;
	}
	if (strcmp(s, ",") == 0 || strcasecmp(s, "comma") == 0)
		*out = ',';
	else if (strcmp(s, ";") == 0 || strcasecmp(s, "semicolon") == 0)
		*out = ';';
	else
		return rl_error_set(RL_EINVALID, "--delimiter: '%s' is not ',' or ';'", s);
	return RL_OK;
}

static const struct rl_field *field_by_column(const struct rl_table *t, const char *col)
{
	return rl_model_field_lookup(t, col);
}

struct import {
	const struct rl_table *t;
	size_t ncols;
	const struct rl_field **col_field;  /* per column, NULL = ignored */
	long rows, bad, created_accounts;
	long row_created;        /* accounts created by the row being imported */
	FILE *report;            /* report_out.f while the bad rows are written */
	struct rl_outfile report_out;
	int skip_bad;
	int progress;
	struct rl_fieldval *vals;
};

static char *trim_copy(const char *s)
{
	size_t len;
	char *r;
	while (*s == ' ')
		s++;
	len = strlen(s);
	while (len && s[len - 1] == ' ')
		len--;
	if (!(r = malloc(len + 1)))
		return NULL;
	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

/* Parse "Col=field,Col2=field2" into col_field for the given header. */
static int apply_map(struct import *im, char **header, size_t nheader, const char *map)
{
	char *copy = NULL, *item, *save = NULL;
	size_t i;
	int error = RL_OK;

	for (i = 0; i < nheader; i++)
		im->col_field[i] = field_by_column(im->t, header[i]);
	if (!map)
		return RL_OK;
	if (!(copy = strdup(map)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strrchr(item, '='), *col = NULL, *field = NULL;
		const struct rl_field *f = NULL;
		size_t k;
		if (!eq) {
			error = rl_error_set(RL_EINVALID, "--map: '%s' is not COLUMN=FIELD", item);
			break;
		}
		*eq = '\0';
		col = trim_copy(item);
		field = trim_copy(eq + 1);
		if (!col || !field) {
			free(col);
			free(field);
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		if (strcmp(field, "-") != 0 && !(f = field_by_column(im->t, field))) {
			error = rl_error_set(RL_EINVALID, "--map: %s has no field '%s'", im->t->noun, field);
		} else {
			for (k = 0; k < nheader; k++)
				if (strcasecmp(header[k], col) == 0)
					break;
			if (k == nheader)
				error = rl_error_set(RL_EINVALID, "--map: the file has no column '%s'", col);
			else
				im->col_field[k] = f;
		}
		free(col);
		free(field);
		if (error < 0)
			break;
	}
	free(copy);
	return error;
}

static int check_columns(struct import *im, char **header, size_t n)
{
	size_t i, j;
	int required_ok;

	for (i = 0; i < n; i++) {
		if (!im->col_field[i]) {
			if (*header[i])
				fprintf(stderr, "relasi: ignoring column '%s' (not a %s field; "
					"map it with --map)\n", header[i], im->t->noun);
			continue;
		}
		for (j = 0; j < i; j++)
			if (im->col_field[j] == im->col_field[i])
				return rl_error_set(RL_EINVALID, "columns '%s' and '%s' both map to %s",
						    header[j], header[i], im->col_field[i]->name);
	}
	for (i = 0; i < im->t->nfields; i++) {
		const struct rl_field *f = &im->t->fields[i];
		if (!(f->flags & RL_FF_REQUIRED))
			continue;
		required_ok = 0;
		for (j = 0; j < n; j++)
			if (im->col_field[j] == f)
				required_ok = 1;
		if (!required_ok)
			return rl_error_set(RL_EINVALID, "no column for the required field '%s' "
					    "(name a column so, or use --map COLUMN=%s)", f->name, f->name);
	}
	return RL_OK;
}

/*
 * Resolve an account a file names: by id (prefix), else by its whole name
 * in any case; create it when no customer has that name. Not the CLI's
 * lookup (rl_record_resolve), which also takes a part of a name: a file
 * naming "Jaya" means a customer called Jaya, and "Toko Jaya Abadi" is
 * another one, which its rows must not be attached to.
 */
static int ensure_account(struct cli_ctx *ctx, struct import *im, const char *name,
			  char id[RL_ID_BUFSZ])
{
	const struct rl_table *acc = rl_model_table("accounts");
	struct rl_fieldval v = { "name", name };
	int error = rl_record_resolve_ex(ctx->store, acc, name, RL_RESOLVE_WHOLE, id);

	if (error != RL_ENOTFOUND)
		return error;
	if (rl_id_is_prefix(name) && strlen(name) >= 16)
		return rl_error_set(RL_ENOTFOUND, "no account with id '%s'", name);
	if ((error = rl_record_create(ctx->store, acc, &v, 1, id)) < 0)
		return error;
	im->row_created++;
	return RL_OK;
}

static int import_row(struct cli_ctx *ctx, struct import *im, char **fields, size_t n)
{
	char refs[RL_MAX_ROW_FIELDS][RL_ID_BUFSZ];   /* a table has at most as many */
	size_t i, nv = 0;

	if (n != im->ncols)
		return rl_error_set(RL_EINVALID, "%zu columns where the header has %zu", n, im->ncols);
	for (i = 0; i < n; i++) {
		const struct rl_field *f = im->col_field[i];
		if (!f || !*fields[i])
			continue;
		im->vals[nv].field = f->name;
		im->vals[nv].text = fields[i];
		if (f->type == RL_FT_REF) {
			/* A whole name or an id, never a part: "Andi" is not
			 * "Andi Wijaya". A customer is made when none has the
			 * name; a contact or deal must exist. */
			char *ref = refs[nv];   /* one column a field (check_columns) */
			int error = strcmp(f->ref, "accounts") == 0
				    ? ensure_account(ctx, im, fields[i], ref)
				    : rl_record_resolve_ex(ctx->store, rl_model_table(f->ref), fields[i],
							   RL_RESOLVE_WHOLE, ref);
			if (error < 0) {
				rl_error_prefix("%s", f->name);
				return error;
			}
			im->vals[nv].text = ref;
		}
		nv++;
	}
	return rl_record_create(ctx->store, im->t, im->vals, nv, NULL);
}

static int savepoint(struct cli_ctx *ctx, const char *sql)
{
	if (sqlite3_exec(rl_store_db(ctx->store), sql, NULL, NULL, NULL) != SQLITE_OK)
		return rl_store_error(ctx->store, sql);
	return RL_OK;
}

static int report_bad(struct import *im, long line, const char *msg)
{
	char linebuf[24];
	const char *cells[2] = { linebuf, msg };

	im->bad++;
	snprintf(linebuf, sizeof(linebuf), "%ld", line);
	if (im->report) {
		int error = rl_csv_write_row(im->report, cells, 2, ',');
		if (error < 0)
			rl_error_prefix("'%s'", rl_outfile_name(&im->report_out));
		return error;
	}
	fprintf(stderr, "relasi: line %ld: %s\n", line, msg);
	return RL_OK;
}

static const char *const deals_only[] = { "date-format", "currency", "stage-map", "map-file", NULL };

static int cmd_import(struct cli_ctx *ctx, struct cli_args *a)
{
	struct import im = { 0 };
	rl_csv_reader *r = NULL;
	char **fields, **header = NULL;
	size_t n, i, nheader = 0;
	long line;
	int delim, error, rc, in_tx = 0, read_bad;
	const char *report_path = cli_get(a, "report");

	if (!(im.t = io_table(a->pos[0], importable)))
		return cli_usage_error(a->cmd, "cannot import '%s' (accounts, contacts, deals, activities)",
				       a->pos[0]);
	if ((error = parse_delimiter(cli_get(a, "delimiter"), &delim)) < 0)
		return error;
	/* Deals have their own importer: reps, dates in a given format, stages. */
	if (strcmp(im.t->name, "deals") == 0)
		return cli_import_deals(ctx, a, delim);
	for (i = 0; deals_only[i]; i++)
		if (cli_get(a, deals_only[i]))
			return cli_usage_error(a->cmd, "--%s is for 'import deals'", deals_only[i]);
	im.skip_bad = cli_get(a, "skip-bad") != NULL;
	if (report_path && !im.skip_bad)
		return cli_usage_error(a->cmd, "--report goes with --skip-bad");
	im.progress = isatty(STDERR_FILENO) && !ctx->json;
	if ((error = rl_csv_open(&r, a->pos[1], delim)) < 0)
		return error;

	rc = rl_csv_next(r, &fields, &n, &line);
	if (rc <= 0) {
		/* the reader's message names the line; the file is ours to name */
		if (rc < 0)
			rl_error_prefix("%s", a->pos[1]);
		error = rc < 0 ? rc : rl_error_set(RL_EINVALID, "'%s' is empty (no header row)", a->pos[1]);
		goto cleanup;
	}
	nheader = n;
	if (!(header = calloc(n, sizeof(*header))) || !(im.col_field = calloc(n, sizeof(*im.col_field))) ||
	    !(im.vals = calloc(n + 1, sizeof(*im.vals)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		if (!(header[i] = trim_copy(fields[i]))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
	im.ncols = n;
	if ((error = apply_map(&im, header, n, cli_get(a, "map"))) < 0)
		goto cleanup;
	if ((error = check_columns(&im, header, n)) < 0) {
		rl_error_prefix("%s: line %ld", a->pos[1], line);   /* the header's */
		goto cleanup;
	}
	if (report_path) {
		const char *hdr[2] = { "line", "error" };
		if ((error = rl_outfile_open(&im.report_out, report_path, 0666)) < 0 ||
		    (error = rl_csv_write_row(im.report_out.f, hdr, 2, ',')) < 0)
			goto cleanup;
		im.report = im.report_out.f;
	}

	/* Only inserts follow: indexed for search and captured in bulk at
	 * the commit; a large file's pages written once, under a rollback
	 * journal (100k contacts 4.75 -> 4.03 s, side by side). */
	if ((error = rl_store_begin_import(ctx->store, a->pos[1])) < 0)
		goto cleanup;
	in_tx = 1;
	for (;;) {
		rc = rl_csv_next(r, &fields, &n, &line);
		if (rc == 0)
			break;
		if (rc == RL_EIO) {
			rl_error_prefix("%s", a->pos[1]);
			error = rc;
			goto cleanup;
		}
		read_bad = rc < 0;
		if (rc > 0 && rl_csv_record_blank(fields, n))
			continue;       /* ",,," is a blank row, as a blank line is */
		if (rc > 0) {
			if (im.skip_bad && (error = savepoint(ctx, "SAVEPOINT row")) < 0)
				goto cleanup;
			im.row_created = 0;
			rc = import_row(ctx, &im, fields, n);
			if (rc == 0)
				im.created_accounts += im.row_created;
			if (im.skip_bad) {
				if (rc < 0 && (error = savepoint(ctx, "ROLLBACK TO row")) < 0)
					goto cleanup;
				if ((error = savepoint(ctx, "RELEASE row")) < 0)
					goto cleanup;
			}
		}
		if (rc < 0) {
			if (rc == RL_ENOMEM || rc == RL_ESTORE || !im.skip_bad) {
				/* a record the reader refused already names its line */
				if (read_bad)
					rl_error_prefix("%s", a->pos[1]);
				else
					rl_error_prefix("%s: line %ld", a->pos[1], line);
				error = rc;
				goto cleanup;
			}
			if ((error = report_bad(&im, line, rl_error_message())) < 0)
				goto cleanup;
			continue;
		}
		im.rows++;
		if (im.progress && im.rows % 5000 == 0)
			fprintf(stderr, "\rimported %ld rows…", im.rows);
	}
	/* The report whole first: should it fail (a full disk), nothing is
	 * imported and the rep can run the import again as it was. */
	if (im.report) {
		im.report = NULL;
		if ((error = rl_outfile_commit(&im.report_out)) < 0)
			goto cleanup;
	}
	if ((error = rl_store_commit(ctx->store)) < 0)
		goto cleanup;
	in_tx = 0;
	if (im.progress)
		fprintf(stderr, "\r%30s\r", "");
	if (ctx->json) {
		error = cli_print_json(json_pack("{s:s, s:I, s:I, s:I}", "table", im.t->name,
			"imported", (json_int_t)im.rows, "bad", (json_int_t)im.bad,
			"created_accounts", (json_int_t)im.created_accounts));
	} else {
		printf("imported %ld %s", im.rows, im.t->name);
		if (im.created_accounts)
			printf(", created %ld new account%s", im.created_accounts,
			       im.created_accounts == 1 ? "" : "s");
		if (im.bad)
			printf(", skipped %ld bad row%s%s%s", im.bad, im.bad == 1 ? "" : "s",
			       report_path ? " (see " : "", report_path ? report_path : "");
		printf("%s\n", im.bad && report_path ? ")" : "");
	}
cleanup:
	if (in_tx)
		rl_store_rollback(ctx->store);
	rl_store_journal_wal(ctx->store);
	rl_outfile_abort(&im.report_out);     /* a failed import writes no report */
	rl_csv_close(r);
	for (i = 0; header && i < nheader; i++)
		free(header[i]);
	free(header);
	free(im.col_field);
	free(im.vals);
	return error;
}

/* ---- CSV export -------------------------------------------------------------- */

/* The columns a deals export adds after the deal fields (cmd_export). */
#define DEAL_EXTRA 3
static const char *const deal_extra[DEAL_EXTRA] = { "owner", "created_at", "closed_at" };

static int cmd_export(struct cli_ctx *ctx, struct cli_args *a)
{
	const struct rl_table *t = io_table(a->pos[0], exportable);
	const char *path = a->npos > 1 ? a->pos[1] : NULL;
	const char **cells = NULL;
	char **bufs = NULL;
	char *sql = NULL;
	sqlite3_str *q;
	sqlite3_stmt *st = NULL;
	struct rl_outfile out = { NULL, NULL, NULL, 0 };
	FILE *f;
	size_t ncols = 1, i, k;
	int delim, error, rc, deals;
	long rows = 0;

	if (!t)
		return cli_usage_error(a->cmd, "cannot export '%s' (accounts, contacts, deals)", a->pos[0]);
	if ((error = parse_delimiter(cli_get(a, "delimiter"), &delim)) < 0)
		return error;
	if (!delim)
		delim = ',';
	deals = strcmp(t->name, "deals") == 0;
	/* Columns: id, then every user field; references as the other record's name. */
	q = sqlite3_str_new(rl_store_db(ctx->store));
	sqlite3_str_appendf(q, "SELECT x.id");
	for (i = 0; i < t->nfields; i++) {
		const struct rl_field *fl = &t->fields[i];
		if (fl->flags & RL_FF_SYSTEM)
			continue;
		if (fl->type == RL_FT_REF) {
			const struct rl_table *rt = rl_model_table(fl->ref);
			sqlite3_str_appendf(q, ", (SELECT \"%w\" FROM \"%w\" WHERE id = x.\"%w\")",
					    rt->label_field, rt->name, fl->name);
		} else if (fl->type == RL_FT_MONEY) {
			sqlite3_str_appendf(q, ", x.\"%w\", x.currency", fl->name);
		} else {
			sqlite3_str_appendf(q, ", x.\"%w\"", fl->name);
		}
		ncols++;
	}
	/* Deals also carry what `import deals` reads back and no user field
	 * holds: the owner (login, else name) and the UTC days the deal was
	 * created and closed. Without them a round trip made every deal the
	 * importer's, created today, and a won deal closed on its expected
	 * close date, which moved it in the win rate, RFM and tiers. */
	if (deals) {
		sqlite3_str_appendf(q, ", coalesce((SELECT coalesce(u.login, u.name) FROM users u"
				    " WHERE u.id = x.owner_id), (SELECT value FROM rl_meta"
				    " WHERE key = 'rep_name' AND x.owner_id = (SELECT value FROM rl_meta"
				    " WHERE key = 'user_id'))), substr(x.created_at, 1, 10),"
				    " substr(x.closed_at, 1, 10)");
		ncols += DEAL_EXTRA;
	}
	sqlite3_str_appendf(q, " FROM \"%w\" x WHERE x.deleted = 0 ORDER BY x.id", t->name);
	sql = sqlite3_str_finish(q);
	if (!sql || !(cells = calloc(ncols, sizeof(*cells))) || !(bufs = calloc(ncols, sizeof(*bufs)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (sqlite3_prepare_v2(rl_store_db(ctx->store), sql, -1, &st, NULL) != SQLITE_OK) {
		error = rl_store_error(ctx->store, "export");
		goto cleanup;
	}
	if ((error = rl_outfile_open(&out, path, 0666)) < 0)
		goto cleanup;
	f = out.f;
	cells[0] = "id";
	for (i = 0, k = 1; i < t->nfields; i++) {
		const struct rl_field *fl = &t->fields[i];
		if (fl->flags & RL_FF_SYSTEM)
			continue;
		cells[k++] = fl->type == RL_FT_REF ? (fl->ref[strlen(fl->ref) - 1] == 's'
			? (strcmp(fl->ref, "accounts") == 0 ? "account"
			   : strcmp(fl->ref, "contacts") == 0 ? "contact" : "stage") : fl->ref)
			: fl->name;
	}
	for (i = 0; deals && i < DEAL_EXTRA; i++)
		cells[k++] = deal_extra[i];
	if ((error = rl_csv_write_row(f, cells, ncols, delim)) < 0)
		goto write_failed;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int c = 0;
		for (i = 0, k = 0; k < ncols; k++, c++) {
			const struct rl_field *fl = NULL;
			if (k > 0 && k < ncols - (deals ? DEAL_EXTRA : 0)) {
				while (t->fields[i].flags & RL_FF_SYSTEM)
					i++;
				fl = &t->fields[i++];
			}
			free(bufs[k]);
			bufs[k] = NULL;
			if (fl && fl->type == RL_FT_MONEY) {
				char m[64];
				const char *cur = cli_col(st, c + 1);
				m[0] = '\0';
				if (sqlite3_column_type(st, c) != SQLITE_NULL)
					rl_money_format(m, sizeof(m), sqlite3_column_int64(st, c), cur);
				bufs[k] = strdup(m);
				c++; /* skip the currency column read with it */
			} else {
				bufs[k] = strdup(cli_col(st, c));
			}
			if (!bufs[k]) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			cells[k] = bufs[k];
		}
		if ((error = rl_csv_write_row(f, cells, ncols, delim)) < 0)
			goto write_failed;
		rows++;
	}
	if (rc != SQLITE_DONE) {
		error = rl_store_error(ctx->store, "export");
		goto cleanup;
	}
	if ((error = rl_outfile_commit(&out)) < 0)
		goto cleanup;
	if (path && strcmp(path, "-") != 0 && !ctx->json)
		fprintf(stderr, "exported %ld %s to %s\n", rows, t->name, path);
	goto cleanup;
write_failed:
	rl_error_prefix("'%s'", rl_outfile_name(&out));
cleanup:
	rl_outfile_abort(&out);        /* a failed export leaves no file, and an earlier one as it was */
	sqlite3_finalize(st);
	sqlite3_free(sql);
	for (k = 0; bufs && k < ncols; k++)
		free(bufs[k]);
	free(bufs);
	free(cells);
	return error;
}

/* ---- vCard ------------------------------------------------------------------------ */

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int error = RL_OK;

	*out = NULL;
	if (!f)
		return rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
	for (;;) {
		size_t got;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb;
			if (cap >= RL_MAX_VCARD_FILE_BYTES) {
				error = rl_error_set(RL_ETOOBIG, "'%s' is larger than %d bytes", path,
						     RL_MAX_VCARD_FILE_BYTES);
				break;
			}
			if (!(nb = realloc(buf, ncap + 1))) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				break;
			}
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				error = rl_error_set(RL_EIO, "reading '%s' failed", path);
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (error < 0) {
		free(buf);
		return error;
	}
	if (!buf && !(buf = malloc(1)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return RL_OK;
}

struct vcard_import {
	rl_vcard *cards;
	size_t ncards;
	const char *account_ref;
	char account[RL_ID_BUFSZ];
	long created_accounts;
};

static int do_vcard_import(struct cli_ctx *ctx, void *arg)
{
	struct vcard_import *vi = arg;
	const struct rl_table *contacts = rl_model_table("contacts");
	struct import im = { 0 };
	size_t i, k;
	int error;

	for (i = 0; i < vi->ncards; i++) {
		rl_vcard *c = &vi->cards[i];
		struct rl_fieldval v[8];
		char acc[RL_ID_BUFSZ];
		sqlite3_str *extra = NULL;
		char *notes = NULL;
		size_t n = 0;

		v[n].field = "name"; v[n++].text = c->fn;
		if (vi->account_ref) {
			v[n].field = "account_id"; v[n++].text = vi->account;
		} else if (c->org && *c->org) {
			if ((error = ensure_account(ctx, &im, c->org, acc)) < 0)
				goto bad;
			im.created_accounts += im.row_created;
			im.row_created = 0;
			v[n].field = "account_id"; v[n++].text = acc;
		}
		if (c->title) { v[n].field = "title"; v[n++].text = c->title; }
		if (c->ntel) { v[n].field = "phone"; v[n++].text = c->tel[0]; }
		if (c->nemail) { v[n].field = "email"; v[n++].text = c->email[0]; }
		if (c->city) { v[n].field = "city"; v[n++].text = c->city; }
		/* Second and later numbers and addresses are kept in the notes,
		 * so importing never drops what the card held. */
		if (c->ntel > 1 || c->nemail > 1) {
			extra = sqlite3_str_new(rl_store_db(ctx->store));
			if (c->note)
				sqlite3_str_appendf(extra, "%s\n", c->note);
			for (k = 1; k < c->ntel; k++)
				sqlite3_str_appendf(extra, "Other phone: %s\n", c->tel[k]);
			for (k = 1; k < c->nemail; k++)
				sqlite3_str_appendf(extra, "Other e-mail: %s\n", c->email[k]);
			notes = sqlite3_str_finish(extra);
			v[n].field = "notes"; v[n++].text = notes;
		} else if (c->note) {
			v[n].field = "notes"; v[n++].text = c->note;
		}
		error = rl_record_create(ctx->store, contacts, v, n, NULL);
		sqlite3_free(notes);
		if (error < 0)
			goto bad;
		continue;
bad:
		rl_error_prefix("card at line %ld (%s)", c->line, c->fn ? c->fn : "?");
		return error;
	}
	vi->created_accounts = im.created_accounts;
	return RL_OK;
}

static int cmd_vcard_import(struct cli_ctx *ctx, struct cli_args *a)
{
	struct vcard_import vi = { 0 };
	char *buf = NULL;
	size_t len = 0;
	int error;

	if ((error = read_file(a->pos[0], &buf, &len)) < 0)
		return error;
	if ((error = rl_vcard_parse(&vi.cards, &vi.ncards, buf, len)) < 0) {
		rl_error_prefix("%s", a->pos[0]);
		goto cleanup;
	}
	vi.account_ref = cli_get(a, "account");
	if (vi.account_ref &&
	    (error = rl_record_resolve(ctx->store, rl_model_table("accounts"), vi.account_ref,
				       vi.account)) < 0)
		goto cleanup;
	if ((error = cli_write(ctx, do_vcard_import, &vi)) < 0) {
		rl_error_prefix("%s", a->pos[0]);
		goto cleanup;
	}
	if (ctx->json)
		error = cli_print_json(json_pack("{s:I, s:I}", "imported", (json_int_t)vi.ncards,
						 "created_accounts", (json_int_t)vi.created_accounts));
	else
		printf("imported %zu contact%s%s\n", vi.ncards, vi.ncards == 1 ? "" : "s",
		       vi.created_accounts ? " (and their new accounts)" : "");
cleanup:
	rl_vcard_free_all(vi.cards, vi.ncards);
	free(buf);
	return error;
}

static int cmd_vcard_export(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *path = a->npos > 0 ? a->pos[0] : NULL;
	const char *ver = cli_get(a, "version");
	char account[RL_ID_BUFSZ];
	sqlite3_stmt *st;
	struct rl_outfile out;
	int version = 4, error, rc;
	long n = 0;

	if (ver) {
		if (strcmp(ver, "3") == 0 || strcmp(ver, "3.0") == 0)
			version = 3;
		else if (strcmp(ver, "4") != 0 && strcmp(ver, "4.0") != 0)
			return rl_error_set(RL_EINVALID, "--version: '%s' is not 3.0 or 4.0", ver);
	}
	if (cli_get(a, "account") &&
	    (error = rl_record_resolve(ctx->store, rl_model_table("accounts"), cli_get(a, "account"),
				       account)) < 0)
		return error;
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT c.id, c.name, a.name, c.title, c.phone, c.email, c.city, c.notes "
	     "FROM contacts c LEFT JOIN accounts a ON a.id = c.account_id "
	     "WHERE c.deleted = 0 AND (?1 IS NULL OR c.account_id = ?1) ORDER BY c.id", &st)) < 0)
		return error;
	if (cli_get(a, "account"))
		sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	if ((error = rl_outfile_open(&out, path, 0666)) < 0) {
		sqlite3_reset(st);
		return error;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rl_vcard c;
		char *tel, *email;     /* a contact has one of each */
		memset(&c, 0, sizeof(c));
		c.tel = &tel;
		c.email = &email;
		c.uid = (char *)sqlite3_column_text(st, 0);
		c.fn = (char *)sqlite3_column_text(st, 1);
		c.org = (char *)sqlite3_column_text(st, 2);
		c.title = (char *)sqlite3_column_text(st, 3);
		if (sqlite3_column_text(st, 4))
			c.tel[c.ntel++] = (char *)sqlite3_column_text(st, 4);
		if (sqlite3_column_text(st, 5))
			c.email[c.nemail++] = (char *)sqlite3_column_text(st, 5);
		c.city = (char *)sqlite3_column_text(st, 6);
		c.note = (char *)sqlite3_column_text(st, 7);
		if ((error = rl_vcard_write(out.f, &c, version)) < 0) {
			rl_error_prefix("'%s'", rl_outfile_name(&out));
			break;
		}
		n++;
	}
	sqlite3_reset(st);
	if (error == 0 && rc != SQLITE_DONE)
		error = rl_store_error(ctx->store, "vcard export");
	if (error == 0)
		error = rl_outfile_commit(&out);
	rl_outfile_abort(&out);        /* after a failure: no file, an earlier one as it was */
	if (error == 0 && path && strcmp(path, "-") != 0 && !ctx->json)
		fprintf(stderr, "exported %ld contact%s to %s\n", n, n == 1 ? "" : "s", path);
	return error;
}

static const struct cli_opt import_opts[] = {
	{ "map", 1, "COL=FIELD,...", "match file columns to fields ('-' ignores a column)", NULL },
	{ "delimiter", 1, "D", "',' or ';' (default: detected from the header)", NULL },
	{ "skip-bad", 0, NULL, "import the good rows, report the bad ones", NULL },
	{ "report", 1, "FILE", "with --skip-bad: write the bad rows (line, error) as CSV", NULL },
	{ "map-file", 1, "FILE", "deals: the column map, one COLUMN=FIELD a line", NULL },
	{ "date-format", 1, "FMT", "deals: every date column as %d %m %y/%Y (e.g. %d-%m-%y)", NULL },
	{ "currency", 1, "CODE", "deals: currency of rows without a currency column value", NULL },
	{ "stage-map", 1, "THEIRS=OURS,...", "deals: their stage names to the pipeline's", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const struct cli_opt export_opts[] = {
	{ "delimiter", 1, "D", "',' (default) or ';'", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const struct cli_opt vcard_import_opts[] = {
	{ "account", 1, "ACCOUNT", "attach every contact to this customer (default: by ORG)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const struct cli_opt vcard_export_opts[] = {
	{ "account", 1, "ACCOUNT", "only this customer's contacts", NULL },
	{ "version", 1, "V", "vCard 4.0 (default) or 3.0", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

const struct cli_cmd cli_cmds_io[] = {
	{ "import", cmd_import, "accounts|contacts|deals|activities FILE",
	  "import a CSV file (all-or-nothing unless --skip-bad)", import_opts, NULL,
	  CLI_MODEL_NONE, 2, 2, 1 },
	{ "export", cmd_export, "accounts|contacts|deals [FILE]", "export as CSV (stdout by default)",
	  export_opts, NULL, CLI_MODEL_NONE, 1, 2, 1 },
	{ "vcard import", cmd_vcard_import, "FILE", "import contacts from vCard 3.0/4.0",
	  vcard_import_opts, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ "vcard export", cmd_vcard_export, "[FILE]", "export contacts as vCard",
	  vcard_export_opts, NULL, CLI_MODEL_NONE, 0, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
