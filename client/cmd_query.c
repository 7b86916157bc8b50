/*
 * cmd_query.c — finding customers and reading the pipeline: full-text search
 * (FTS5) over customers, contacts and activity notes; "nearby" by distance
 * through the R*Tree; the pipeline per stage with weighted amounts.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/limits.h"
#include "relasi/valid.h"

/*
 * People type words, not FTS5 syntax: each word becomes a quoted prefix term
 * ("makm"*), all of which must match. Quoting makes operators and punctuation
 * plain text, so no input can be a malformed query.
 */
/* What separates the words typed (or pasted: a newline too). */
static int word_gap(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static char *fts_query(const char *text)
{
	sqlite3_str *q = sqlite3_str_new(NULL);
	const char *p = text;
	int terms = 0;

	while (*p) {
		while (word_gap(*p))
			p++;
		if (!*p)
			break;
		if (terms++)
			sqlite3_str_appendchar(q, 1, ' ');
		sqlite3_str_appendchar(q, 1, '"');
		while (*p && !word_gap(*p)) {
			if (*p == '"')
				sqlite3_str_appendchar(q, 1, '"');
			sqlite3_str_appendchar(q, 1, *p++);
		}
		sqlite3_str_appendall(q, "\"*");
	}
	if (!terms) {
		sqlite3_free(sqlite3_str_finish(q));
		return NULL;
	}
	return sqlite3_str_finish(q);
}

static const char *search_cell(struct cli_ctx *ctx, sqlite3_stmt *st, int col, char *buf,
			       size_t len)
{
	const char *kind = cli_col(st, 0);
	char sid[RL_ID_BUFSZ];

	if (col != 1)
		return NULL;
	snprintf(buf, len, "%s", cli_short_id(ctx, strcmp(kind, "account") == 0 ? "accounts"
					     : strcmp(kind, "contact") == 0 ? "contacts"
					     : "activities", cli_col(st, 1), sid));
	return buf;
}

static void search_json(struct cli_ctx *ctx, sqlite3_stmt *st, json_t *row)
{
	char buf[RL_ID_BUFSZ];
	json_object_set_new(row, "short_id", json_string(search_cell(ctx, st, 1, buf, sizeof(buf))));
}

static int cmd_search(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "kind", "id", "name", "where", "match" };
	static const struct cli_view view = { hdr, 5, NULL, search_cell, search_json, NULL };
	const char *limit_s = cli_get(a, "limit");
	char *q = NULL, *end;
	sqlite3_stmt *st;
	long limit = 20;
	int error;

	if (limit_s) {
		limit = strtol(limit_s, &end, 10);
		if (*end || limit <= 0 || limit > 10000)
			return rl_error_set(RL_EUSAGE, "--limit: '%s' is not a count 1..10000", limit_s);
	}
	if (strlen(a->pos[0]) > RL_MAX_NAME_BYTES)
		return rl_error_set(RL_EINVALID, "search text longer than %d bytes", RL_MAX_NAME_BYTES);
	if (!(q = fts_query(a->pos[0])))
		return rl_error_set(RL_EINVALID, "nothing to search for in '%s'", a->pos[0]);
	/* Ranked first, snippets after: a snippet re-reads and tokenizes its
	 * document, and a common word ("makmur") matches thousands of them,
	 * of which the LIMIT keeps 20. The indexes hold live rows only
	 * (schema/016_fts_live.sql), so the hits are ranked by bm25 from the
	 * indexes alone; only those as good as the LIMIT-th (ties included)
	 * are looked up in their tables for their id, the tie-breaker, which
	 * gives exactly the rows that ordering all of them by (rank, id)
	 * would. Each kept one then gets its snippet from a MATCH limited to
	 * its rowid. */
	if ((error = rl_store_prepare(ctx->store,
	     "WITH hits AS MATERIALIZED ("
	     " SELECT 1 AS k, rowid AS rid, bm25(fts_accounts) AS rank"
	     "  FROM fts_accounts WHERE fts_accounts MATCH ?1"
	     " UNION ALL"
	     " SELECT 2, rowid, bm25(fts_contacts) FROM fts_contacts WHERE fts_contacts MATCH ?1"
	     " UNION ALL"
	     " SELECT 3, rowid, bm25(fts_activities) FROM fts_activities"
	     "  WHERE fts_activities MATCH ?1),"
	     "top AS (SELECT k, rid, rank, CASE k"
	     "  WHEN 1 THEN (SELECT id FROM accounts WHERE rowid = rid)"
	     "  WHEN 2 THEN (SELECT id FROM contacts WHERE rowid = rid)"
	     "  ELSE (SELECT id FROM activities WHERE rowid = rid) END AS id"
	     " FROM hits WHERE rank <= coalesce("
	     "  (SELECT rank FROM hits ORDER BY rank LIMIT 1 OFFSET ?2 - 1), 1e308)"
	     " ORDER BY rank, id LIMIT ?2)"
	     "SELECT 'account' AS kind, x.id AS id, x.name AS name, coalesce(x.city, '') AS place,"
	     " (SELECT snippet(fts_accounts, -1, '[', ']', '…', 8) FROM fts_accounts"
	     "  WHERE fts_accounts MATCH ?1 AND rowid = t.rid) AS snip, t.rank AS rank"
	     " FROM top t JOIN accounts x ON x.rowid = t.rid WHERE t.k = 1"
	     " UNION ALL "
	     "SELECT 'contact', x.id, x.name, coalesce(a.name, ''),"
	     " (SELECT snippet(fts_contacts, -1, '[', ']', '…', 8) FROM fts_contacts"
	     "  WHERE fts_contacts MATCH ?1 AND rowid = t.rid), t.rank"
	     " FROM top t JOIN contacts x ON x.rowid = t.rid"
	     " LEFT JOIN accounts a ON a.id = x.account_id WHERE t.k = 2"
	     " UNION ALL "
	     "SELECT 'activity', x.id, x.kind || ' ' || substr(x.at, 1, 10), coalesce(a.name, ''),"
	     " (SELECT snippet(fts_activities, -1, '[', ']', '…', 8) FROM fts_activities"
	     "  WHERE fts_activities MATCH ?1 AND rowid = t.rid), t.rank"
	     " FROM top t JOIN activities x ON x.rowid = t.rid"
	     " LEFT JOIN accounts a ON a.id = x.account_id WHERE t.k = 3"
	     " ORDER BY 6, 2", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, q, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, limit);
	error = cli_emit(ctx, st, &view, NULL, NULL);
cleanup:
	sqlite3_free(q);
	return error;
}

static const char *km_cell(struct cli_ctx *ctx, sqlite3_stmt *st, int col, char *buf, size_t len)
{
	if (col != 3)
		return NULL;
	snprintf(buf, len, "%.2f", sqlite3_column_double(st, 3));
	return buf;
}

static int cmd_nearby(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "id", "name", "city", "km" };
	static const struct cli_view view = { hdr, 4, "accounts", km_cell, NULL,
					      "no customers within that distance" };
	const char *geo = cli_get(a, "geo"), *km_s = cli_get(a, "km"), *limit_s = cli_get(a, "limit");
	double lat, lon, km = 5.0, box[4];
	long limit = 20;
	char *end;
	sqlite3_stmt *st;
	int error;

	if (!geo)
		return cli_usage_error(a->cmd, "nearby needs --geo LAT,LON");
	if ((error = rl_geo_parse(&lat, &lon, geo)) < 0)
		return cli_option_error(error, "geo");
	if (km_s) {
		km = strtod(km_s, &end);
		if (*end || !(km > 0) || km > 2000)
			return rl_error_set(RL_EUSAGE, "--km: '%s' is not a distance 0..2000", km_s);
	}
	if (limit_s) {
		limit = strtol(limit_s, &end, 10);
		if (*end || limit <= 0 || limit > 10000)
			return rl_error_set(RL_EUSAGE, "--limit: '%s' is not a count 1..10000", limit_s);
	}
	/* A box around the circle for the R*Tree, then the exact distance.
	 * The circle is 6 m wider than asked: the answer holds every customer
	 * whose distance, rounded to 10 m, is within --km. (Until 5 Dec 2026
	 * the box took 111.32 km for a degree, not the 111.195 of the sphere
	 * distances are measured on, and missed customers near its edge.) */
	rl_geo_box(lat, lon, km + 0.006, box);
	/* The index holds live customers only (schema 12). Distances are
	 * first computed from each box's centre: the box is the position
	 * rounded outward to 32-bit floats, so the centre is within ~2.3 m of
	 * it (SQLite's R*Tree: at most ~2 ulp each way), and reading the exact
	 * position that rides along in the index (its auxiliary columns)
	 * costs a lookup per customer: ~2,500 of them for 5 km around central
	 * Jakarta on the benchmark dataset, most of the command. With D = 5 m,
	 * twice that error, and T the LIMIT-th nearest centre among those
	 * within ?7 + 10 m, every customer that can be in the answer has its
	 * centre within min(?7, T) + 20 m (the rounding to 10 m included).
	 * Only those are read from accounts and ordered by their exact
	 * distance, rounded, and id: exactly the rows that ordering all of
	 * them would give. */
	if ((error = rl_store_prepare(ctx->store,
	     "WITH r AS MATERIALIZED ("
	     " SELECT g.id AS rid,"
	     "  rl_distance_km(?1, ?2, (g.min_lat + g.max_lat) / 2, (g.min_lon + g.max_lon) / 2) AS near"
	     " FROM geo_accounts g"
	     " WHERE g.max_lat >= ?3 AND g.min_lat <= ?4 AND g.max_lon >= ?5 AND g.min_lon <= ?6),"
	     "c AS (SELECT x.id AS id, x.name AS name, coalesce(x.city, '') AS city,"
	     "  round(rl_distance_km(?1, ?2, x.lat, x.lon), 2) AS km, x.lat AS lat, x.lon AS lon"
	     " FROM r JOIN accounts x ON x.rowid = r.rid"
	     " WHERE r.near <= min(?7, coalesce("
	     "  (SELECT near FROM r WHERE near <= ?7 + 0.01 ORDER BY near LIMIT 1 OFFSET ?8 - 1),"
	     "  ?7)) + 0.02)"
	     "SELECT id, name, city, km, lat, lon FROM c WHERE km <= ?7 ORDER BY km, id LIMIT ?8", &st)) < 0)
		return error;
	sqlite3_bind_double(st, 1, lat);
	sqlite3_bind_double(st, 2, lon);
	sqlite3_bind_double(st, 3, box[0]);
	sqlite3_bind_double(st, 4, box[1]);
	sqlite3_bind_double(st, 5, box[2]);
	sqlite3_bind_double(st, 6, box[3]);
	sqlite3_bind_double(st, 7, km);
	sqlite3_bind_int64(st, 8, limit);
	return cli_emit(ctx, st, &view, NULL, NULL);
}

/*
 * Weighted amount = amount x probability / 100, the deal's own probability
 * if set, else its stage's; rounded half up in minor units. Amounts in
 * different currencies are never added: one row per stage and currency.
 */
static const char *pipeline_cell(struct cli_ctx *ctx, sqlite3_stmt *st, int col, char *buf,
				 size_t len)
{
	if ((col == 3 || col == 4) && sqlite3_column_type(st, 4) == SQLITE_NULL)
		return "";
	switch (col) {
	case 1:
		snprintf(buf, len, "%d%%", sqlite3_column_int(st, 1));
		return buf;
	case 3:
		return cli_money(buf, len, st, 5, 4);
	case 4:
		return cli_money(buf, len, st, 6, 4);
	default:
		return NULL;
	}
}

static int cmd_pipeline(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "stage", "prob", "deals", "amount", "weighted" };
	static const struct cli_view view = { hdr, 5, NULL, pipeline_cell, NULL, NULL };
	sqlite3_stmt *st;
	int error;
	char owner[RL_ID_BUFSZ];

	if (cli_get(a, "owner") &&
	    (error = rl_record_resolve(ctx->store, rl_model_table("users"), cli_get(a, "owner"),
				       owner)) < 0)
		return error;
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT s.name AS stage, s.probability, count(d.id) AS deals, s.kind,"
	     " d.currency, coalesce(sum(d.amount), 0) AS amount,"
	     " coalesce(sum(" RP_WEIGHTED "), 0) AS weighted,"
	     " s.position"
	     " FROM stages s LEFT JOIN deals d ON d.stage_id = s.id AND d.deleted = 0"
	     "  AND" RP_CUSTOMER_LIVE("d") " AND (?1 IS NULL OR d.owner_id = ?1)"
	     " WHERE s.deleted = 0 GROUP BY s.id, d.currency ORDER BY s.position, s.name, d.currency",
	     &st)) < 0)
		return error;
	if (cli_get(a, "owner"))
		sqlite3_bind_text(st, 1, owner, -1, SQLITE_TRANSIENT);
	return cli_emit(ctx, st, &view, NULL, NULL);
}

static const struct cli_opt search_opts[] = {
	{ "limit", 1, "N", "at most N results (default 20)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const struct cli_opt nearby_opts[] = {
	{ "geo", 1, "LAT,LON", "where you are, decimal degrees (required)", NULL },
	{ "km", 1, "N", "radius in kilometres (default 5)", NULL },
	{ "limit", 1, "N", "at most N customers (default 20)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const struct cli_opt pipeline_opts[] = {
	{ "owner", 1, "USER", "only deals owned by this user", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

const struct cli_cmd cli_cmds_query[] = {
	{ "search", cmd_search, "TEXT", "full-text search over customers, contacts and notes",
	  search_opts, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ "nearby", cmd_nearby, "--geo LAT,LON [--km N]", "customers by distance",
	  nearby_opts, NULL, CLI_MODEL_NONE, 0, 0, CLI_STORE_FEW },
	{ "pipeline", cmd_pipeline, "", "per stage: deals, amount and weighted amount",
	  pipeline_opts, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
