/*
 * fuzz_csv.c — the CSV reader (sync/src/csv.c, on libcsv) over a memory
 * buffer, record after record to the end, as `relasi import` reads a file.
 * The first input byte picks the delimiter ('0' and every byte = 0 mod 3:
 * detect; = 1 mod 3: ','; = 2 mod 3: ';'); the rest is the file.
 *
 * Asserts:
 *  - rl_csv_next returns 1, 0, RL_EINVALID or RL_ETOOBIG (never RL_EIO or
 *    RL_ENOMEM on a memory buffer), and after an error it goes on with the
 *    next record as relasi/csv.h promises, reaching the end in a bounded
 *    number of calls; after 0 it keeps returning 0;
 *  - a record has 1..RL_MAX_CSV_FIELDS fields, each valid UTF-8 without
 *    NUL, RL_MAX_CSV_RECORD_BYTES in all at most; its line number is >= 1,
 *    never goes back, and is within the input's lines; errors have a
 *    message naming the line;
 *  - every record read round-trips: rl_csv_write_row and reading the output
 *    back give the same fields (after a header line, as an export has one);
 *  - the detected delimiter is ',' or ';'; nothing leaks.
 */
#include "fuzz_util.h"

#include <string.h>

#include "relasi/csv.h"
#include "relasi/error.h"
#include "relasi/limits.h"

static void check_roundtrip(char **fields, size_t n, int delim)
{
	char *buf = NULL, **back;
	size_t len = 0, nback, i;
	FILE *f = open_memstream(&buf, &len);
	rl_csv_reader *r = NULL;
	long line;
	int rc;

	FZ_CHECK(f != NULL, "open_memstream");
	fputs("header\r\n", f);
	FZ_CHECK(rl_csv_write_row(f, (const char *const *)fields, n, delim) == RL_OK, "write");
	FZ_CHECK(fclose(f) == 0, "memstream");
	FZ_CHECK(rl_csv_open_mem(&r, buf, len, delim) == RL_OK, "reopen");
	FZ_CHECK(rl_csv_next(r, &back, &nback, &line) == 1, "header lost");
	rc = rl_csv_next(r, &back, &nback, &line);
	FZ_CHECK(rc == 1, "a written record did not read back (%d): %s", rc, buf);
	FZ_CHECK(nback == n, "%zu fields came back as %zu: %s", n, nback, buf);
	for (i = 0; i < n; i++)
		FZ_CHECK(strcmp(fields[i], back[i]) == 0, "field %zu '%s' came back as '%s'", i,
			 fields[i], back[i]);
	FZ_CHECK(rl_csv_next(r, &back, &nback, &line) == 0, "more than one record came back");
	rl_csv_close(r);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int delims[3] = { 0, ',', ';' };
	const char *text = (const char *)data + 1;
	size_t len = size ? size - 1 : 0, i, lines = 1, calls;
	rl_csv_reader *r = NULL;
	long last_line = 0;
	int delim, rc = 1;

	if (size == 0)
		return 0;
	delim = delims[data[0] % 3];
	for (i = 0; i < len; i++)
		if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n')))
			lines++;

	FZ_CHECK(rl_csv_open_mem(&r, text, len, delim) == RL_OK, "open_mem refused a buffer");
	FZ_CHECK(rl_csv_delimiter(r) == ',' || rl_csv_delimiter(r) == ';', "delimiter %d",
		 rl_csv_delimiter(r));
	delim = rl_csv_delimiter(r);
	/* Every call consumes at least one line (or a 1 MiB piece of one). */
	for (calls = 0; calls <= lines + 2; calls++) {
		char **fields = (char **)1;
		size_t n = 12345, total = 0;
		long line = -1;

		rc = rl_csv_next(r, &fields, &n, &line);
		if (rc == 0)
			break;
		FZ_CHECK(rc == 1 || rc == RL_EINVALID || rc == RL_ETOOBIG, "rl_csv_next: %d", rc);
		FZ_CHECK(line >= 1 && (size_t)line <= lines, "line %ld of %zu", line, lines);
		FZ_CHECK(line >= last_line, "line %ld after line %ld", line, last_line);
		last_line = line;
		if (rc < 0) {
			FZ_CHECK(strstr(rl_error_message(), "line ") != NULL,
				 "error without its line: %s", rl_error_message());
			continue;
		}
		FZ_CHECK(fields != NULL && n >= 1 && n <= RL_MAX_CSV_FIELDS, "%zu fields", n);
		for (i = 0; i < n; i++) {
			size_t fl = strlen(fields[i]);
			FZ_CHECK(fz_utf8_ok(fields[i], fl), "field %zu is not UTF-8", i);
			total += fl;
		}
		FZ_CHECK(total <= RL_MAX_CSV_RECORD_BYTES, "record of %zu bytes", total);
		check_roundtrip(fields, n, delim);
	}
	FZ_CHECK(rc == 0, "no end after %zu calls on %zu lines", calls, lines);
	{
		char **fields;
		size_t n;
		long line;
		FZ_CHECK(rl_csv_next(r, &fields, &n, &line) == 0, "records after the end");
	}
	rl_csv_close(r);
	return 0;
}
