/*
 * fuzz_import.c — the CSV importer path: CSV reader -> header mapped to
 * model fields (rl_model_field_lookup) -> each row's text converted and
 * validated by field type and written (rl_record_create, with customers
 * named in an account column found or created) into a real store, each row
 * in its own savepoint as `relasi import --skip-bad` does.
 *
 * The row loop of client/cmd_io.c (cmd_import, import_row, ensure_account)
 * is static to the client, so it is mirrored here step for step on the same
 * library calls; everything it relies on for untrusted text — csv.c,
 * model.c, record.c, valid.c — is the library's and is what runs.
 *
 * Input: the first byte picks the table (byte % 4: accounts, contacts,
 * deals, activities); the rest is the CSV file (delimiter detected).
 *
 * Asserts:
 *  - a bad row fails with a "user" error (RL_EINVALID, RL_ETOOBIG,
 *    RL_ENOTFOUND, RL_EAMBIGUOUS) and a message — never RL_ESTORE: a value
 *    that passed conversion but that the schema refuses is a validation
 *    gap; and rolling its savepoint back leaves the store exactly as before;
 *  - after the import every stored field of every record passes
 *    rl_model_check_value, i.e. what a device writes from text is what the
 *    hub accepts when it is pushed.
 */
#include "fuzz_util.h"

#include <string.h>

#include "relasi/csv.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/model.h"
#include "relasi/record.h"
#include "relasi/store.h"

/* Rows looked at per input: enough for every interaction between rows. */
#define FZ_IMPORT_ROWS 40

static rl_store *store;
static int64_t hlc0;

static void setup(void)
{
	fz_setup_env();
	store = fz_store_open(0);
	FZ_CHECK(rl_store_set_identity(store, "0000000000000000000000000000d001",
				       "0000000000000000000000000000b0d1") == RL_OK, "identity");
	FZ_CHECK(rl_store_meta_set(store, "country", "ID") == RL_OK &&
		 rl_store_meta_set(store, "currency", "IDR") == RL_OK, "settings");
	/* Customers to refer to by name, one ambiguous pair. */
	FZ_CHECK(sqlite3_exec(rl_store_db(store),
		 "INSERT INTO accounts(id, name, city, owner_id, created_at) VALUES "
		 "('000000000000000000000000000a0001', 'Toko Makmur', 'Bandung', "
		 " '0000000000000000000000000000b0d1', '2026-03-01T08:00:00Z'),"
		 "('000000000000000000000000000a0002', 'Toko Makmur Jaya', 'Bogor', "
		 " '0000000000000000000000000000b0d1', '2026-03-01T08:00:00Z'),"
		 "('000000000000000000000000000a0003', 'Toko Makmur Jaya Abadi', 'Bogor', "
		 " '0000000000000000000000000000b0d1', '2026-03-01T08:00:00Z');"
		 "INSERT INTO contacts(id, name, account_id, owner_id, created_at) VALUES "
		 "('000000000000000000000000000c0001', 'Siti', '000000000000000000000000000a0001', "
		 " '0000000000000000000000000000b0d1', '2026-03-01T08:00:00Z');",
		 NULL, NULL, NULL) == SQLITE_OK, "seed rows: %s", sqlite3_errmsg(rl_store_db(store)));
	fz_store_snapshot(store);
	hlc0 = rl_store_hlc(store)->last;
}

static int user_error(int rc)
{
	return rc == RL_EINVALID || rc == RL_ETOOBIG || rc == RL_ENOTFOUND || rc == RL_EAMBIGUOUS;
}

/* cmd_io.c ensure_account(): an account by reference, created if unknown. */
static int ensure_account(const char *name, char id[RL_ID_BUFSZ])
{
	const struct rl_table *acc = rl_model_table("accounts");
	struct rl_fieldval v = { "name", name };
	int error = rl_record_resolve(store, acc, name, id);

	if (error != RL_ENOTFOUND)
		return error;
	if (rl_id_is_prefix(name) && strlen(name) >= 16)
		return rl_error_set(RL_ENOTFOUND, "no account with id '%s'", name);
	return rl_record_create(store, acc, &v, 1, id);
}

/* cmd_io.c import_row(). */
static int import_row(const struct rl_table *t, const struct rl_field **cols, size_t ncols,
		      char **fields, size_t n, struct rl_fieldval *vals,
		      char (*accounts)[RL_ID_BUFSZ])
{
	size_t i, nv = 0;

	if (n != ncols && !(n == 1 && !*fields[0]))
		return rl_error_set(RL_EINVALID, "%zu columns where the header has %zu", n, ncols);
	for (i = 0; i < n; i++) {
		const struct rl_field *f = cols[i];
		if (!f || !*fields[i])
			continue;
		vals[nv].field = f->name;
		vals[nv].text = fields[i];
		if (f->type == RL_FT_REF && strcmp(f->ref, "accounts") == 0) {
			int error = ensure_account(fields[i], accounts[nv]);
			if (error < 0)
				return error;
			vals[nv].text = accounts[nv];
		}
		nv++;
	}
	return rl_record_create(store, t, vals, nv, NULL);
}

static char *trim_copy(const char *s)
{
	size_t len;
	char *r;

	while (*s == ' ')
		s++;
	len = strlen(s);
	while (len && s[len - 1] == ' ')
		len--;
	r = malloc(len + 1);
	FZ_CHECK(r != NULL, "out of memory");
	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

static void import(const struct rl_table *t, const char *text, size_t len)
{
	const struct rl_field *cols[RL_MAX_CSV_FIELDS];
	struct rl_fieldval vals[RL_MAX_CSV_FIELDS];
	char accounts[RL_MAX_CSV_FIELDS][RL_ID_BUFSZ];
	sqlite3 *db = rl_store_db(store);
	rl_csv_reader *r = NULL;
	char **fields;
	size_t n, ncols, i, j, rows;
	long line;
	int rc;

	FZ_CHECK(rl_csv_open_mem(&r, text, len, 0) == RL_OK, "open");
	if (rl_csv_next(r, &fields, &n, &line) != 1)
		goto done;
	ncols = n;
	for (i = 0; i < n; i++) {
		char *h = trim_copy(fields[i]);
		cols[i] = rl_model_field_lookup(t, h);
		free(h);
	}
	/* cmd_io.c check_columns(): one column per field, required ones present. */
	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if (cols[i] && cols[j] == cols[i])
				goto done;
	for (i = 0; i < t->nfields; i++) {
		int found = 0;
		if (!(t->fields[i].flags & RL_FF_REQUIRED))
			continue;
		for (j = 0; j < n; j++)
			found |= cols[j] == &t->fields[i];
		if (!found)
			goto done;
	}

	FZ_CHECK(rl_store_begin(store) == RL_OK, "begin");
	for (rows = 0; rows < FZ_IMPORT_ROWS; rows++) {
		uint64_t before;
		rc = rl_csv_next(r, &fields, &n, &line);
		if (rc == 0)
			break;
		if (rc < 0)
			continue;       /* a CSV error: reported and skipped (fuzz_csv checks it) */
		FZ_CHECK(sqlite3_exec(db, "SAVEPOINT row", NULL, NULL, NULL) == SQLITE_OK, "savepoint");
		before = fz_db_digest(db);
		rc = import_row(t, cols, ncols, fields, n, vals, accounts);
		if (rc < 0) {
			FZ_CHECK(user_error(rc), "line %ld refused with error %d: %s", line, rc,
				 rl_error_message());
			FZ_CHECK(rl_error_message()[0], "error without a message");
			FZ_CHECK(sqlite3_exec(db, "ROLLBACK TO row", NULL, NULL, NULL) == SQLITE_OK,
				 "rollback to");
			FZ_CHECK(fz_db_digest(db) == before, "a refused row left data behind");
		}
		FZ_CHECK(sqlite3_exec(db, "RELEASE row", NULL, NULL, NULL) == SQLITE_OK, "release");
	}
	FZ_CHECK(rl_store_commit(store) == RL_OK, "commit: %s", rl_error_message());
	fz_check_synced_values(db, "after an import");
done:
	rl_csv_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const tables[4] = { "accounts", "contacts", "deals", "activities" };

	if (!store)
		setup();
	if (size == 0)
		return 0;
	rl_store_hlc(store)->last = hlc0;
	import(rl_model_table(tables[data[0] % 4]), (const char *)data + 1, size - 1);
	fz_store_restore(store);
	return 0;
}
