/*
 * relasi/csv.h — reading and writing CSV as spreadsheets produce it.
 *
 * Reading is built on libcsv and handles: quoted fields holding the delimiter,
 * quotes ("") and newlines; a UTF-8 byte-order mark; ',' or ';' delimiters
 * (';' is what Excel writes in Indonesian and other comma-decimal locales),
 * detected from the header line unless given; LF or CRLF line ends. Every
 * record is reported with the physical line number on which it starts, so
 * errors can name it. Sizes are bounded by RL_MAX_CSV_FIELDS and
 * RL_MAX_CSV_RECORD_BYTES (relasi/limits.h); invalid UTF-8 is an error.
 */
#ifndef RELASI_CSV_H
#define RELASI_CSV_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rl_csv_reader rl_csv_reader;

/*
 * Open path for reading ("-" is stdin). delimiter is ',' or ';', or 0 to
 * detect it from the first line (whichever of the two occurs more often
 * outside quotes; ',' on a tie). *out is owned by the caller: rl_csv_close.
 * RL_EIO if the file cannot be opened, RL_EINVALID for another delimiter.
 */
int rl_csv_open(rl_csv_reader **out, const char *path, int delimiter);

/* Same, over a memory buffer that must outlive the reader (tests, fuzzing). */
int rl_csv_open_mem(rl_csv_reader **out, const char *data, size_t len, int delimiter);

/*
 * Read the next record. Returns 1 and sets *fields (an array of *nfields
 * NUL-terminated strings) and *line (line number where the record starts,
 * 1-based), 0 at end of input, or a negative code: RL_ETOOBIG (too many
 * fields, record too long), RL_EINVALID (malformed quoting in strict places,
 * invalid UTF-8), RL_EIO. The arrays belong to the reader and stay valid only
 * until the next call. Blank lines are skipped. After an error the reader
 * can go on with the next record (the bad one is skipped) when the error was
 * RL_EINVALID or RL_ETOOBIG, so that an importer can skip and report bad rows.
 */
int rl_csv_next(rl_csv_reader *r, char ***fields, size_t *nfields, long *line);

/* Whether every one of the n fields of a record is empty: a row a
 * spreadsheet writes as ",,," for cells it once formatted, which importers
 * skip like a blank line. */
int rl_csv_record_blank(char *const *fields, size_t nfields);

/* The delimiter in use (after detection). */
int rl_csv_delimiter(const rl_csv_reader *r);

/* rl_csv_close(NULL) is a no-op. */
void rl_csv_close(rl_csv_reader *r);

/*
 * Write one record: each field quoted only when it holds the delimiter, a
 * quote, CR or LF, or starts/ends with a space. NULL fields are written
 * empty. Lines end with "\r\n" (RFC 4180). Returns RL_OK or RL_EIO.
 */
int rl_csv_write_row(FILE *f, const char *const *fields, size_t n, int delimiter);

#ifdef __cplusplus
}
#endif
#endif
