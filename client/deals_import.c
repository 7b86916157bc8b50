/*
 * deals_import.c — `relasi import deals FILE`: a deals export as
 * spreadsheets and other CRMs produce it (docs/reports.md, "Importing a pipeline").
 *
 * On top of the generic import's rules (cmd_io.c: header row, --map,
 * all-or-nothing unless --skip-bad, --report):
 *  - extra columns a deal's export carries: owner (rep), created_at and
 *    closed_at, besides every deal field (--map "Owner=owner,...", or
 *    --map-file with one COLUMN=FIELD a line);
 *  - --date-format applies to every date column (close, created, closed);
 *    without it dates are read like `relasi add` reads them. Empty dates and
 *    amounts are allowed (open deals often have none);
 *  - the currency from a currency column, else --currency, else the store's;
 *  - accounts matched by name: exact, else the same folded key the hub's
 *    duplicate finder uses (case, accents, punctuation, spaces); two
 *    accounts with that key is a bad row; no match creates the account;
 *  - reps matched among the store's users (synced from the hub) by login,
 *    then by folded display name. A rep that matches nobody is listed in
 *    the summary and the deal is owned by the importing user (a rep missing
 *    from the hub is common in old exports; refusing the whole file would
 *    make the import unusable until the admin adds everyone);
 *  - stages by --stage-map "Theirs=Ours,...", then by the pipeline's stage
 *    names, both folded like account names; an unknown stage is a bad row;
 *  - a won or lost deal gets closed_at (the closed column, else its close
 *    date, else its creation date, else now) and a stage event into its
 *    stage at that time, so winrate and conversion see it.
 * Every write is an ordinary store write, so change capture sends it all at
 * the next sync. Lookups use tables loaded once (users, stages, accounts):
 * a few thousand rows take one statement per write, not per lookup.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "relasi/csv.h"
#include "relasi/limits.h"
#include "relasi/outfile.h"
#include "relasi/record.h"
#include "relasi/valid.h"

/* What a column holds beyond an ordinary deal field. */
enum di_kind { DI_NONE, DI_FIELD, DI_OWNER, DI_CREATED, DI_CLOSED };

struct di_col {
	enum di_kind kind;
	const struct rl_field *f;     /* DI_FIELD */
};

struct di_user {
	char id[RL_ID_BUFSZ];
	char *login, *key;
};

struct di_stage {
	char id[RL_ID_BUFSZ];
	char kind[8];
	char *name, *key;
};

struct di_alias {          /* --stage-map entry */
	char *key;
	size_t stage;
};

struct di_account {
	char id[RL_ID_BUFSZ];
	char *name, *key;
	int created, counted;
};

struct di_name {           /* an unmatched rep or stage, as first spelled */
	char *name;
	long deals;
};

struct di {
	struct cli_ctx *ctx;
	const struct rl_table *t;
	const char *path, *date_fmt;
	char currency[4];          /* --currency, "" if none */
	size_t ncols;
	char **header;
	struct di_col *cols;
	struct di_user *users;
	size_t nusers;
	struct di_stage *stages;
	size_t nstages;
	struct di_alias *aliases;
	size_t naliases;
	struct di_account **accounts;  /* sorted by key, then name */
	size_t naccounts, capaccounts;
	struct di_account *row_new;    /* created by the row being imported */
	struct di_account *row_matched; /* an existing one it named (counted on success) */
	struct di_name *reps, *unstages;
	size_t nreps, nunstages;
	long rows, bad, created, matched, won, lost;
	FILE *report;            /* report_out.f while the bad rows are written */
	struct rl_outfile report_out;
	int skip_bad, progress;
	int64_t now;
	int tz;
};

/* ---- names ------------------------------------------------------------------ */

/* Folded key (rl_name_fold): the hub's duplicate name key, so
 * "PT. Maju  Jaya" and "pt maju jaya" meet. */
static int fold(const char *in, char **out)
{
	return rl_name_fold(in, out);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static int note_name(struct di_name **list, size_t *n, const char *name)
{
	struct di_name *nl;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*list)[i].name, name) == 0) {
			(*list)[i].deals++;
			return RL_OK;
		}
	if (!(nl = realloc(*list, (*n + 1) * sizeof(*nl))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	*list = nl;
	if (!(nl[*n].name = strdup(name)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	nl[*n].deals = 1;
	(*n)++;
	return RL_OK;
}

/* ---- loading what the file is matched against ------------------------------- */

static int load_users(struct di *im)
{
	sqlite3_stmt *st;
	int rc, error;

	/* A store not yet enrolled has no users row for its own user: the name
	 * given to `relasi init` stands in, as in the reports. */
	if ((error = rl_store_prepare(im->ctx->store, "SELECT id, login, name FROM users "
				      "WHERE deleted = 0 UNION ALL "
				      "SELECT u.value, NULL, n.value FROM rl_meta u JOIN rl_meta n "
				      "ON n.key = 'rep_name' WHERE u.key = 'user_id' AND u.value <> '' "
				      "AND NOT EXISTS (SELECT 1 FROM users WHERE id = u.value)", &st)) < 0)
		return error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct di_user *nu = realloc(im->users, (im->nusers + 1) * sizeof(*nu));
		if (!nu) {
			sqlite3_reset(st);
			return rl_error_set(RL_ENOMEM, "out of memory");
		}
		im->users = nu;
		nu = &im->users[im->nusers];
		memset(nu, 0, sizeof(*nu));
		im->nusers++;
		snprintf(nu->id, sizeof(nu->id), "%s", cli_col(st, 0));
		if (!(nu->login = dup_or_empty(cli_col(st, 1))) ||
		    (error = fold(cli_col(st, 2), &nu->key)) < 0) {
			sqlite3_reset(st);
			return nu->login ? error : rl_error_set(RL_ENOMEM, "out of memory");
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(im->ctx->store, "reading the users");
}

static int load_stages(struct di *im)
{
	sqlite3_stmt *st;
	int rc, error;

	if ((error = rl_store_prepare(im->ctx->store, "SELECT id, name, kind FROM stages "
				      "WHERE deleted = 0 ORDER BY position, name", &st)) < 0)
		return error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct di_stage *ns = realloc(im->stages, (im->nstages + 1) * sizeof(*ns));
		if (!ns) {
			sqlite3_reset(st);
			return rl_error_set(RL_ENOMEM, "out of memory");
		}
		im->stages = ns;
		ns = &im->stages[im->nstages];
		memset(ns, 0, sizeof(*ns));
		im->nstages++;
		snprintf(ns->id, sizeof(ns->id), "%s", cli_col(st, 0));
		snprintf(ns->kind, sizeof(ns->kind), "%s", cli_col(st, 2));
		if (!(ns->name = strdup(cli_col(st, 1))) || (error = fold(ns->name, &ns->key)) < 0) {
			sqlite3_reset(st);
			return ns->name ? error : rl_error_set(RL_ENOMEM, "out of memory");
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(im->ctx->store, "reading the stages");
}

static int account_cmp(const struct di_account *a, const char *key, const char *name)
{
	int c = strcmp(a->key, key);
	return c ? c : strcmp(a->name, name);
}

/* Index of the first account not before (key, name). */
static size_t account_lower(const struct di *im, const char *key, const char *name)
{
	size_t lo = 0, hi = im->naccounts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (account_cmp(im->accounts[mid], key, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int account_add(struct di *im, const char *id, const char *name, struct di_account **out)
{
	struct di_account *a = calloc(1, sizeof(*a));
	size_t at;
	int error;

	if (!a || !(a->name = strdup(name))) {
		free(a);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	if ((error = fold(name, &a->key)) < 0) {
		free(a->name);
		free(a);
		return error;
	}
	snprintf(a->id, sizeof(a->id), "%s", id);
	if (im->naccounts == im->capaccounts) {
		size_t ncap = im->capaccounts ? im->capaccounts * 2 : 256;
		struct di_account **na = realloc(im->accounts, ncap * sizeof(*na));
		if (!na) {
			free(a->key);
			free(a->name);
			free(a);
			return rl_error_set(RL_ENOMEM, "out of memory");
		}
		im->accounts = na;
		im->capaccounts = ncap;
	}
	at = account_lower(im, a->key, a->name);
	memmove(&im->accounts[at + 1], &im->accounts[at], (im->naccounts - at) * sizeof(*im->accounts));
	im->accounts[at] = a;
	im->naccounts++;
	if (out)
		*out = a;
	return RL_OK;
}

static void account_free(struct di_account *a)
{
	free(a->name);
	free(a->key);
	free(a);
}

/* Forget the account the failed row created (its insert was rolled back). */
static void account_drop_row_new(struct di *im)
{
	size_t i;

	if (!im->row_new)
		return;
	for (i = 0; i < im->naccounts; i++)
		if (im->accounts[i] == im->row_new) {
			memmove(&im->accounts[i], &im->accounts[i + 1],
				(im->naccounts - i - 1) * sizeof(*im->accounts));
			im->naccounts--;
			break;
		}
	account_free(im->row_new);
	im->row_new = NULL;
}

static int load_accounts(struct di *im)
{
	sqlite3_stmt *st;
	int rc, error;

	if ((error = rl_store_prepare(im->ctx->store, "SELECT id, name FROM accounts "
				      "WHERE deleted = 0", &st)) < 0)
		return error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((error = account_add(im, cli_col(st, 0), cli_col(st, 1), NULL)) < 0) {
			sqlite3_reset(st);
			return error;
		}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(im->ctx->store, "reading the accounts");
}

/* ---- the column map ----------------------------------------------------------- */

static int target_of(const struct rl_table *t, const char *name, struct di_col *out)
{
	static const struct { const char *name; enum di_kind kind; } extra[] = {
		{ "owner", DI_OWNER }, { "owner_id", DI_OWNER }, { "rep", DI_OWNER },
		{ "created_at", DI_CREATED }, { "created", DI_CREATED },
		{ "closed_at", DI_CLOSED }, { "closed", DI_CLOSED }
	};
	size_t i;

	out->kind = DI_NONE;
	out->f = NULL;
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		if (strcasecmp(name, extra[i].name) == 0) {
			out->kind = extra[i].kind;
			return 1;
		}
	if ((out->f = rl_model_field_lookup(t, name))) {
		out->kind = DI_FIELD;
		return 1;
	}
	return 0;
}

static char *trim(char *s)
{
	size_t len;
	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* One "Column=field" item of --map or of a map file line. */
static int map_item(struct di *im, char *item, const char *where)
{
	char *eq = strrchr(item, '='), *col, *field;
	struct di_col target = { DI_NONE, NULL };
	size_t k;

	if (!eq)
		return rl_error_set(RL_EINVALID, "%s: '%s' is not COLUMN=FIELD", where, item);
	*eq = '\0';
	col = trim(item);
	field = trim(eq + 1);
	if (!*col || !*field)
		return rl_error_set(RL_EINVALID, "%s: '%s=%s' needs a column and a field", where, col,
				    field);
	if (strcmp(field, "-") != 0 && !target_of(im->t, field, &target))
		return rl_error_set(RL_EINVALID, "%s: a deal has no field '%s' (deal fields, owner, "
				    "created_at, closed_at, or '-')", where, field);
	for (k = 0; k < im->ncols; k++)
		if (strcasecmp(im->header[k], col) == 0)
			break;
	if (k == im->ncols)
		return rl_error_set(RL_EINVALID, "%s: the file has no column '%s'", where, col);
	im->cols[k] = target;
	return RL_OK;
}

static int apply_map(struct di *im, const char *map)
{
	char *copy, *item, *save = NULL;
	int error = RL_OK;

	if (!(copy = strdup(map)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (item = strtok_r(copy, ",", &save); item && error == 0; item = strtok_r(NULL, ",", &save))
		error = map_item(im, item, "--map");
	free(copy);
	return error;
}

/* A map file: one COLUMN=FIELD a line (a column name may hold commas
 * there); blank lines and lines starting with '#' are skipped. */
static int apply_map_file(struct di *im, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024], where[64];
	long n = 0;
	int error = RL_OK;

	if (!f)
		return rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
	while (error == 0 && fgets(line, sizeof(line), f)) {
		char *s;
		n++;
		if (!strchr(line, '\n') && !feof(f)) {
			error = rl_error_set(RL_ETOOBIG, "--map-file %s: line %ld is longer than %zu bytes",
					     path, n, sizeof(line) - 2);
			break;
		}
		line[strcspn(line, "\n")] = '\0';
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		snprintf(where, sizeof(where), "--map-file line %ld", n);
		error = map_item(im, s, where);
	}
	if (error == 0 && ferror(f))
		error = rl_error_set(RL_EIO, "reading '%s' failed", path);
	fclose(f);
	return error;
}

static int check_columns(struct di *im)
{
	size_t i, j;
	int have_title = 0, have_account = 0;

	for (i = 0; i < im->ncols; i++) {
		const struct di_col *c = &im->cols[i];
		if (c->kind == DI_NONE) {
			if (*im->header[i])
				fprintf(stderr, "relasi: ignoring column '%s' (not a deal field; "
					"map it with --map)\n", im->header[i]);
			continue;
		}
		for (j = 0; j < i; j++)
			if (im->cols[j].kind == c->kind && im->cols[j].f == c->f)
				return rl_error_set(RL_EINVALID, "columns '%s' and '%s' both map to %s",
						    im->header[j], im->header[i],
						    c->f ? c->f->name : c->kind == DI_OWNER ? "owner"
						    : c->kind == DI_CREATED ? "created_at" : "closed_at");
		if (c->f && strcmp(c->f->name, "title") == 0)
			have_title = 1;
		if (c->f && strcmp(c->f->name, "account_id") == 0)
			have_account = 1;
	}
	if (!have_title)
		return rl_error_set(RL_EINVALID, "no column for the required field 'title' "
				    "(name a column so, or use --map COLUMN=title)");
	if (!have_account)
		return rl_error_set(RL_EINVALID, "no column for the required field 'account_id' "
				    "(name a column so, or use --map COLUMN=account)");
	return RL_OK;
}

static int parse_stage_map(struct di *im, const char *map)
{
	char *copy, *item, *save = NULL;
	int error = RL_OK;

	if (!map)
		return RL_OK;
	if (!(copy = strdup(map)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (item = strtok_r(copy, ",", &save); item && error == 0; item = strtok_r(NULL, ",", &save)) {
		char *eq = strrchr(item, '='), *key = NULL, *ours;
		struct di_alias *na;
		size_t s;
		if (!eq) {
			error = rl_error_set(RL_EINVALID, "--stage-map: '%s' is not THEIRS=STAGE", item);
			break;
		}
		*eq = '\0';
		ours = trim(eq + 1);
		if ((error = fold(trim(item), &key)) < 0 || (error = fold(ours, &ours)) < 0) {
			free(key);
			break;
		}
		for (s = 0; s < im->nstages; s++)
			if (strcmp(im->stages[s].key, ours) == 0)
				break;
		if (!*key || s == im->nstages) {
			error = rl_error_set(RL_EINVALID, !*key ? "--stage-map: '%s=%s' names no stage"
					     : "--stage-map: the pipeline has no stage '%s' (for '%s')",
					     trim(eq + 1), trim(item));
			free(key);
			free(ours);
			break;
		}
		free(ours);
		if (!(na = realloc(im->aliases, (im->naliases + 1) * sizeof(*na)))) {
			free(key);
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		im->aliases = na;
		na[im->naliases].key = key;
		na[im->naliases++].stage = s;
	}
	free(copy);
	return error;
}

/* ---- one row ----------------------------------------------------------------- */

static int col_error(const struct di *im, size_t col)
{
	rl_error_prefix("column '%s'", im->header[col]);
	return rl_error_code() ? rl_error_code() : RL_EINVALID;
}

static int parse_date(const struct di *im, size_t col, const char *text, char out[11])
{
	int error = im->date_fmt ? rl_date_parse_fmt(out, text, im->date_fmt)
				 : rl_date_parse(out, text, im->now, im->tz);
	return error < 0 ? col_error(im, col) : RL_OK;
}

static int find_stage(struct di *im, size_t col, const char *text, size_t *out)
{
	char *key;
	size_t i;
	int error;

	if ((error = fold(text, &key)) < 0)
		return col_error(im, col);
	for (i = 0; i < im->naliases; i++)
		if (strcmp(im->aliases[i].key, key) == 0) {
			*out = im->aliases[i].stage;
			free(key);
			return RL_OK;
		}
	for (i = 0; i < im->nstages; i++)
		if (strcmp(im->stages[i].key, key) == 0) {
			*out = i;
			free(key);
			return RL_OK;
		}
	free(key);
	if ((error = note_name(&im->unstages, &im->nunstages, text)) < 0)
		return error;
	rl_error_set(RL_EINVALID, "unknown stage '%s' (map it with --stage-map '%s=STAGE')",
		     text, text);
	return col_error(im, col);
}

/* The user a rep's name or login means; *out = NULL when nobody. */
static int find_rep(struct di *im, size_t col, const char *text, const struct di_user **out)
{
	char *key;
	size_t i, found = 0;
	int error;

	*out = NULL;
	for (i = 0; i < im->nusers; i++)
		if (im->users[i].login[0] && strcasecmp(im->users[i].login, text) == 0) {
			*out = &im->users[i];
			return RL_OK;
		}
	if ((error = fold(text, &key)) < 0)
		return col_error(im, col);
	for (i = 0; i < im->nusers; i++)
		if (*key && strcmp(im->users[i].key, key) == 0) {
			*out = &im->users[i];
			found++;
		}
	free(key);
	if (found > 1) {
		*out = NULL;
		rl_error_set(RL_EAMBIGUOUS, "rep '%s' matches %zu users; use their login", text, found);
		return col_error(im, col);
	}
	return RL_OK;
}

static int find_account(struct di *im, size_t col, const char *text, char id[RL_ID_BUFSZ])
{
	struct di_account *exact = NULL, *one = NULL;
	char *key;
	size_t i, same = 0;
	int error;

	if ((error = fold(text, &key)) < 0)
		return col_error(im, col);
	if (!*key) {
		free(key);
		rl_error_set(RL_EINVALID, "'%s' is not a customer name", text);
		return col_error(im, col);
	}
	for (i = account_lower(im, key, ""); i < im->naccounts && strcmp(im->accounts[i]->key, key) == 0;
	     i++) {
		if (strcmp(im->accounts[i]->name, text) == 0 && !exact)
			exact = im->accounts[i];
		one = im->accounts[i];
		same++;
	}
	free(key);
	if (!exact && same > 1) {
		rl_error_set(RL_EAMBIGUOUS, "customer '%s' matches %zu accounts by name; "
			     "rename one or use the exact name", text, same);
		return col_error(im, col);
	}
	if (exact || one) {
		struct di_account *a = exact ? exact : one;
		if (!a->created)
			im->row_matched = a;
		memcpy(id, a->id, RL_ID_BUFSZ);
		return RL_OK;
	}
	{
		const struct rl_table *acc = rl_model_table("accounts");
		struct rl_fieldval v = { "name", text };
		struct di_account *a;
		if ((error = rl_record_create(im->ctx->store, acc, &v, 1, id)) < 0)
			return col_error(im, col);
		if ((error = account_add(im, id, text, &a)) < 0)
			return error;
		a->created = 1;
		im->row_new = a;
	}
	return RL_OK;
}

static int stage_event(struct di *im, const char *deal, const char *to, const char *at)
{
	char ev[RL_ID_BUFSZ];
	const char *me = rl_store_user_id(im->ctx->store);
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_new_id(im->ctx->store, ev)) < 0 ||
	    (error = rl_store_prepare(im->ctx->store,
	     "INSERT INTO deal_stage_events(id, deal_id, from_stage_id, to_stage_id, at, user_id) "
	     "VALUES (?1, ?2, NULL, ?3, ?4, ?5)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, ev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, deal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
	if (me[0])
		sqlite3_bind_text(st, 5, me, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return rl_store_error(im->ctx->store, "recording the stage");
	}
	sqlite3_reset(st);
	return RL_OK;
}

static int import_row(struct di *im, char **fields, size_t n, struct rl_fieldval *vals)
{
	const struct rl_table *deals = im->t;
	const struct di_user *owner = NULL;
	char account[RL_ID_BUFSZ], deal[RL_ID_BUFSZ], cur[4] = "";
	char close_d[11] = "", created_d[11] = "", closed_d[11] = "", when[21];
	char refs[4][RL_ID_BUFSZ];          /* a deal's references but its customer */
	const char *amount = NULL, *lost_rep = NULL;
	size_t i, nv = 0, nref = 0, stage = (size_t)-1, amount_col = 0;
	int error;

	if (n != im->ncols)
		return rl_error_set(RL_EINVALID, "%zu columns where the header has %zu", n, im->ncols);
	/* Currency first: the amount is read in it. */
	for (i = 0; i < n; i++)
		if (im->cols[i].kind == DI_FIELD && strcmp(im->cols[i].f->name, "currency") == 0 &&
		    *fields[i]) {
			size_t k;
			if (strlen(fields[i]) != 3) {
				rl_error_set(RL_EINVALID, "'%s' is not an ISO 4217 currency code", fields[i]);
				return col_error(im, i);
			}
			for (k = 0; k < 3; k++)
				cur[k] = (fields[i][k] >= 'a' && fields[i][k] <= 'z')
					 ? (char)(fields[i][k] - 32) : fields[i][k];
			cur[3] = '\0';
			if (rl_currency_exponent(cur) < 0) {
				rl_error_set(RL_EINVALID, "'%s' is not an ISO 4217 currency code", fields[i]);
				return col_error(im, i);
			}
		}
	if (!cur[0] && im->currency[0])
		memcpy(cur, im->currency, 4);
	if (!cur[0] && (error = rl_store_default_currency(im->ctx->store, cur)) < 0)
		return error;
	vals[nv].field = "currency";
	vals[nv++].text = cur;

	/* Everything that can be wrong with the row, before anything is written. */
	for (i = 0; i < n; i++) {
		const struct di_col *c = &im->cols[i];
		const char *v = fields[i];
		if (c->kind == DI_NONE || !*v)
			continue;
		if (c->kind == DI_CREATED) {
			if ((error = parse_date(im, i, v, created_d)) < 0)
				return error;
		} else if (c->kind == DI_CLOSED) {
			if ((error = parse_date(im, i, v, closed_d)) < 0)
				return error;
		} else if (c->kind == DI_OWNER) {
			if ((error = find_rep(im, i, v, &owner)) < 0)
				return error;
			if (!owner)
				lost_rep = v;
		} else if (strcmp(c->f->name, "stage_id") == 0) {
			if ((error = find_stage(im, i, v, &stage)) < 0)
				return error;
		} else if (strcmp(c->f->name, "expected_close") == 0) {
			if ((error = parse_date(im, i, v, close_d)) < 0)
				return error;
		} else if (strcmp(c->f->name, "amount") == 0) {
			int64_t minor;
			if ((error = rl_money_parse(&minor, v, cur)) < 0)
				return col_error(im, i);
			amount = v;
			amount_col = i;
		} else if (c->f->type == RL_FT_REF && strcmp(c->f->name, "account_id") != 0) {
			/* A contact named whole or by id, never a part of a
			 * name ("Rina" is not "Rina Sari"), as every import. */
			if (nref == sizeof(refs) / sizeof(refs[0]) ||
			    rl_record_resolve_ex(im->ctx->store, rl_model_table(c->f->ref), v,
						 RL_RESOLVE_WHOLE, refs[nref]) < 0)
				return col_error(im, i);
			vals[nv].field = c->f->name;
			vals[nv++].text = refs[nref++];
		} else if (strcmp(c->f->name, "currency") != 0 && strcmp(c->f->name, "account_id") != 0) {
			vals[nv].field = c->f->name;
			vals[nv++].text = v;
		}
	}
	(void)amount_col;
	if (amount) {
		vals[nv].field = "amount";
		vals[nv++].text = amount;
	}
	if (close_d[0]) {
		vals[nv].field = "expected_close";
		vals[nv++].text = close_d;
	}
	if (stage != (size_t)-1) {
		vals[nv].field = "stage_id";
		vals[nv++].text = im->stages[stage].id;
	}
	for (i = 0; i < n; i++)
		if (im->cols[i].kind == DI_FIELD && strcmp(im->cols[i].f->name, "account_id") == 0) {
			if (!*fields[i]) {
				rl_error_set(RL_EINVALID, "a deal needs a customer");
				return col_error(im, i);
			}
			if ((error = find_account(im, i, fields[i], account)) < 0)
				return error;
			vals[nv].field = "account_id";
			vals[nv++].text = account;
		}
	if ((error = rl_record_create(im->ctx->store, deals, vals, nv, deal)) < 0)
		return error;
	if (owner && strcmp(owner->id, rl_store_user_id(im->ctx->store)) != 0 &&
	    (error = rl_record_set_raw_text(im->ctx->store, deals, deal, "owner_id", owner->id)) < 0)
		return error;
	if (created_d[0]) {
		snprintf(when, sizeof(when), "%sT00:00:00Z", created_d);
		if ((error = rl_record_set_raw_text(im->ctx->store, deals, deal, "created_at", when)) < 0)
			return error;
	}
	if (stage != (size_t)-1 && strcmp(im->stages[stage].kind, "open") != 0) {
		const char *day = closed_d[0] ? closed_d : close_d[0] ? close_d
				  : created_d[0] ? created_d : NULL;
		if (day)
			snprintf(when, sizeof(when), "%sT00:00:00Z", day);
		else
			rl_time_format_utc(when, im->now);
		if ((error = rl_record_set_raw_text(im->ctx->store, deals, deal, "closed_at", when)) < 0 ||
		    (error = stage_event(im, deal, im->stages[stage].id, when)) < 0)
			return error;
		if (strcmp(im->stages[stage].kind, "won") == 0)
			im->won++;
		else
			im->lost++;
	}
	if (im->row_matched && !im->row_matched->counted) {
		im->row_matched->counted = 1;
		im->matched++;
	}
	return lost_rep ? note_name(&im->reps, &im->nreps, lost_rep) : RL_OK;
}

/* ---- the command ----------------------------------------------------------------- */

static int exec_sql(struct di *im, const char *sql)
{
	if (sqlite3_exec(rl_store_db(im->ctx->store), sql, NULL, NULL, NULL) != SQLITE_OK)
		return rl_store_error(im->ctx->store, sql);
	return RL_OK;
}

static int report_bad(struct di *im, long line)
{
	char linebuf[24];
	const char *cells[2] = { linebuf, rl_error_message() };

	im->bad++;
	snprintf(linebuf, sizeof(linebuf), "%ld", line);
	if (im->report) {
		int error = rl_csv_write_row(im->report, cells, 2, ',');
		if (error < 0)
			rl_error_prefix("'%s'", rl_outfile_name(&im->report_out));
		return error;
	}
	fprintf(stderr, "relasi: line %ld: %s\n", line, rl_error_message());
	return RL_OK;
}

static json_t *names_json(const struct di_name *list, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:I}", "name", list[i].name,
						   "deals", (json_int_t)list[i].deals));
	return a;
}

static void print_names(const char *what, const struct di_name *list, size_t n, const char *tail)
{
	size_t i;

	printf("%s: %zu", what, n);
	for (i = 0; i < n; i++)
		printf("%s%s (%ld deal%s)", i ? ", " : " — ", list[i].name, list[i].deals,
		       list[i].deals == 1 ? "" : "s");
	printf("%s\n", n ? tail : "");
}

static int print_summary(struct di *im, const char *report_path)
{
	if (im->ctx->json)
		return cli_print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
			"table", "deals", "imported", (json_int_t)im->rows, "bad", (json_int_t)im->bad,
			"created_accounts", (json_int_t)im->created,
			"accounts_matched", (json_int_t)im->matched,
			"won", (json_int_t)im->won, "lost", (json_int_t)im->lost,
			"reps_unmatched", names_json(im->reps, im->nreps),
			"stages_unmatched", names_json(im->unstages, im->nunstages)));
	printf("imported %ld deal%s (%ld won, %ld lost, %ld open)", im->rows, im->rows == 1 ? "" : "s",
	       im->won, im->lost, im->rows - im->won - im->lost);
	if (im->bad)
		printf(", skipped %ld bad row%s%s%s%s", im->bad, im->bad == 1 ? "" : "s",
		       report_path ? " (see " : "", report_path ? report_path : "",
		       report_path ? ")" : "");
	printf("\naccounts created: %ld\naccounts matched: %ld\n", im->created, im->matched);
	print_names("reps unmatched", im->reps, im->nreps, "; their deals are owned by you");
	print_names("stages unmatched", im->unstages, im->nunstages, "; those rows were skipped");
	return RL_OK;
}

static void di_free(struct di *im)
{
	size_t i;

	for (i = 0; im->header && i < im->ncols; i++)
		free(im->header[i]);
	free(im->header);
	free(im->cols);
	for (i = 0; i < im->nusers; i++) {
		free(im->users[i].login);
		free(im->users[i].key);
	}
	free(im->users);
	for (i = 0; i < im->nstages; i++) {
		free(im->stages[i].name);
		free(im->stages[i].key);
	}
	free(im->stages);
	for (i = 0; i < im->naliases; i++)
		free(im->aliases[i].key);
	free(im->aliases);
	for (i = 0; i < im->naccounts; i++)
		account_free(im->accounts[i]);
	free(im->accounts);
	for (i = 0; i < im->nreps; i++)
		free(im->reps[i].name);
	free(im->reps);
	for (i = 0; i < im->nunstages; i++)
		free(im->unstages[i].name);
	free(im->unstages);
}

int cli_import_deals(struct cli_ctx *ctx, struct cli_args *a, int delim)
{
	struct di im;
	rl_csv_reader *r = NULL;
	struct rl_fieldval *vals = NULL;
	char **fields;
	size_t n, i;
	long line;
	int error, rc, in_tx = 0, read_bad;
	const char *report_path = cli_get(a, "report"), *cur = cli_get(a, "currency");
	char probe[11];

	memset(&im, 0, sizeof(im));
	im.ctx = ctx;
	im.t = rl_model_table("deals");
	im.path = a->pos[1];
	im.date_fmt = cli_get(a, "date-format");
	im.skip_bad = cli_get(a, "skip-bad") != NULL;
	im.progress = isatty(STDERR_FILENO) && !ctx->json;
	im.now = rl_store_now_ms(ctx->store) / 1000;
	im.tz = rl_store_tz_offset(ctx->store);
	if (report_path && !im.skip_bad)
		return cli_usage_error(a->cmd, "--report goes with --skip-bad");
	/* A bad format is reported once, before any row, not as every row's error. */
	if (im.date_fmt && rl_date_parse_fmt(probe, "", im.date_fmt) < 0 &&
	    !strstr(rl_error_message(), "does not match")) {
		rl_error_prefix("--date-format");
		return RL_EINVALID;
	}
	if (cur) {
		size_t k;
		if (strlen(cur) != 3)
			return rl_error_set(RL_EINVALID, "--currency: '%s' is not an ISO 4217 code", cur);
		for (k = 0; k < 3; k++)
			im.currency[k] = (cur[k] >= 'a' && cur[k] <= 'z') ? (char)(cur[k] - 32) : cur[k];
		if (rl_currency_exponent(im.currency) < 0)
			return rl_error_set(RL_EINVALID, "--currency: '%s' is not an ISO 4217 code", cur);
	}
	if ((error = rl_csv_open(&r, im.path, delim)) < 0)
		return error;
	rc = rl_csv_next(r, &fields, &n, &line);
	if (rc <= 0) {
		/* the reader's message names the line; the file is ours to name */
		if (rc < 0)
			rl_error_prefix("%s", im.path);
		error = rc < 0 ? rc : rl_error_set(RL_EINVALID, "'%s' is empty (no header row)", im.path);
		goto cleanup;
	}
	if (!(im.header = calloc(n, sizeof(*im.header))) || !(im.cols = calloc(n, sizeof(*im.cols))) ||
	    !(vals = calloc(n + 4, sizeof(*vals)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	im.ncols = n;
	for (i = 0; i < n; i++) {
		if (!(im.header[i] = strdup(fields[i]))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		{
			char *t = trim(im.header[i]);
			memmove(im.header[i], t, strlen(t) + 1);
		}
		target_of(im.t, im.header[i], &im.cols[i]);
	}
	if ((error = load_stages(&im)) < 0 || (error = load_users(&im)) < 0 ||
	    (cli_get(a, "map-file") && (error = apply_map_file(&im, cli_get(a, "map-file"))) < 0) ||
	    (cli_get(a, "map") && (error = apply_map(&im, cli_get(a, "map"))) < 0))
		goto cleanup;
	if ((error = check_columns(&im)) < 0) {
		rl_error_prefix("%s: line %ld", im.path, line);     /* the header's */
		goto cleanup;
	}
	if ((error = parse_stage_map(&im, cli_get(a, "stage-map"))) < 0)
		goto cleanup;
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
	if ((error = rl_store_begin_import(ctx->store, im.path)) < 0)
		goto cleanup;
	in_tx = 1;
	/* Read inside the transaction: nobody adds an account in between. */
	if ((error = load_accounts(&im)) < 0)
		goto cleanup;
	for (;;) {
		rc = rl_csv_next(r, &fields, &n, &line);
		if (rc == 0)
			break;
		if (rc == RL_EIO) {
			rl_error_prefix("%s", im.path);
			error = rc;
			goto cleanup;
		}
		read_bad = rc < 0;
		if (rc > 0 && rl_csv_record_blank(fields, n))
			continue;       /* ",,," is a blank row, as a blank line is */
		if (rc > 0) {
			if (im.skip_bad && (error = exec_sql(&im, "SAVEPOINT row")) < 0)
				goto cleanup;
			im.row_new = im.row_matched = NULL;
			rc = import_row(&im, fields, n, vals);
			if (rc < 0)
				account_drop_row_new(&im);
			else if (im.row_new)
				im.created++;
			im.row_new = NULL;
			if (im.skip_bad) {
				if (rc < 0 && (error = exec_sql(&im, "ROLLBACK TO row")) < 0)
					goto cleanup;
				if ((error = exec_sql(&im, "RELEASE row")) < 0)
					goto cleanup;
			}
		}
		if (rc < 0) {
			if (rc == RL_ENOMEM || rc == RL_ESTORE || !im.skip_bad) {
				/* a record the reader refused already names its line */
				if (read_bad)
					rl_error_prefix("%s", im.path);
				else
					rl_error_prefix("%s: line %ld", im.path, line);
				error = rc;
				goto cleanup;
			}
			if ((error = report_bad(&im, line)) < 0)
				goto cleanup;
			continue;
		}
		im.rows++;
		if (im.progress && im.rows % 1000 == 0)
			fprintf(stderr, "\rimported %ld deals…", im.rows);
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
	error = print_summary(&im, report_path);
cleanup:
	if (in_tx)
		rl_store_rollback(ctx->store);
	rl_store_journal_wal(ctx->store);
	rl_outfile_abort(&im.report_out);     /* a failed import writes no report */
	rl_csv_close(r);
	free(vals);
	di_free(&im);
	return error;
}
