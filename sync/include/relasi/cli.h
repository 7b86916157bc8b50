/*
 * relasi/cli.h — the command framework both binaries (relasi, relasi-hub)
 * are built on: git-style "noun verb" commands from a table, option parsing
 * driven by each command's option spec (plus options generated from the
 * model for add/edit), --help and --json everywhere, output helpers for
 * aligned tables and JSON, and the mapping from library error codes to exit
 * statuses. Each program supplies its tables and a hook that opens its store.
 *
 * Exit statuses (documented in README and `--help`):
 *   0 ok · 1 other error · 2 usage (unknown option, missing argument)
 *   3 not found · 4 ambiguous name · 5 invalid input · 6 store too new
 *   7 store or file error · 8 hub unreachable, refused us, or broke the protocol
 */
#ifndef RELASI_CLI_FRAMEWORK_H
#define RELASI_CLI_FRAMEWORK_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "relasi/error.h"
#include "relasi/model.h"
#include "relasi/record.h"
#include "relasi/store.h"

enum {
	EXIT_USAGE = 2, EXIT_NOTFOUND = 3, EXIT_AMBIGUOUS = 4, EXIT_INVALID = 5,
	EXIT_VERSION = 6, EXIT_STORE = 7, EXIT_NETWORK = 8, EXIT_DENIED = 9
};

struct cli_opt {
	const char *name;     /* long option without "--" */
	int has_arg;          /* 1: takes a value; 0: a flag */
	const char *arg_name; /* shown in help: "DATE"; ending in "...": the option
	                       * may be repeated, its values joined by ',' */
	const char *help;
	const char *field;    /* model field it sets (generated options) */
};

enum cli_model_mode { CLI_MODEL_NONE, CLI_MODEL_ADD, CLI_MODEL_EDIT };

struct cli_ctx;
struct cli_args;

#define CLI_STORE_FEW 2

struct cli_cmd {
	const char *name;         /* "deal move" */
	int (*run)(struct cli_ctx *ctx, struct cli_args *a);
	const char *usage;        /* positional arguments: "DEAL STAGE" */
	const char *summary;
	const struct cli_opt *opts; /* terminated by {NULL} ; may be NULL */
	const char *model_table;  /* add model-field options for this table */
	enum cli_model_mode model_mode;
	int min_pos, max_pos;     /* positional argument count */
	int needs_store;          /* nonzero: opens the store first; CLI_STORE_FEW: the
	                             command reads a few dozen pages (relasi opens it
	                             RL_STORE_UNMAPPED: relasi/store.h) */
};

struct cli_args {
	const struct cli_cmd *cmd;
	struct cli_opt *opts;     /* effective options (owned) */
	size_t nopts;
	size_t nmodel;            /* opts[0..nmodel) are generated from the model */
	const char **vals;        /* per option: value, "1" for a flag, or NULL */
	const char **pos;         /* positional arguments (owned array) */
	size_t npos;
	char **joined;            /* values of repeated options, joined (owned) */
	size_t njoined;
};

struct cli_ctx {
	rl_store *store;
	int json;
	char *home;               /* store directory */
	char *store_path;         /* home/relasi.db */
	const char *view_table;   /* the table a cli_view callback is showing */
	void *app;                /* the program's own state */
};

/* A program: its name and help text, its command tables, and the hooks that
 * prepare what a command needs (locate and open the store) and release it.
 * prepare sees the parsed arguments (a->cmd is the command; a program may
 * read where its store is from an option). store_opts, when set, are
 * options every command with needs_store takes besides its own (relasi-hub:
 * --dir), so a shared command table (relasi/report.h) needs no per-program
 * copy; terminated by { NULL }. */
struct cli_program {
	const char *name;               /* "relasi" */
	const char *version;
	const char *intro;              /* first help paragraph */
	const char *outro;              /* help text after the command list */
	const struct cli_cmd *const *tables;  /* NULL-terminated */
	int (*prepare)(struct cli_ctx *ctx, const struct cli_args *a);
	void (*release)(struct cli_ctx *ctx);
	const struct cli_opt *store_opts;
};

/* Run the program on argv; returns the exit status. */
int cli_main(const struct cli_program *prog, int argc, char **argv);

/* The value of option name, or NULL when not given. */
const char *cli_get(const struct cli_args *a, const char *name);

/* Model-field options given on the command line, as field/value pairs
 * (array owned by the caller: free()). */
struct rl_fieldval *cli_model_values(const struct cli_args *a, size_t *n, size_t extra);

/* Print the library's last error to stderr and return the exit status. */
int cli_fail(int error);

/* Print a usage error and return EXIT_USAGE. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A bad value of an option that steers a command (a filter, a limit, a
 * distance) rather than data to be stored is a usage error (exit 2), as
 * the reports' options are: turns `error` (the library's last error, from
 * parsing the value) into RL_EUSAGE with its message prefixed "--OPT: ",
 * when it is RL_EINVALID or RL_ETOOBIG; any other code is returned as it
 * is (a name the store lacks stays "not found": the option was well
 * formed).
 */
int cli_option_error(int error, const char *opt);

/* Print JSON to stdout (compact when not a terminal? no: always indented). */
int cli_print_json(json_t *j);

/* A row of a query as a JSON object, column name -> value. */
json_t *cli_row_json(sqlite3_stmt *st);

/* Aligned text table. */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols, const char *const *headers);
int cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t, FILE *f);
/* Data rows (headers not counted). */
size_t cli_table_rows(const struct cli_table *t);
void cli_table_free(struct cli_table *t);

/*
 * How a query's rows are shown. Text: a table of columns 0..ncols-1 (column
 * 0 shown as a short id when id_table is set; cell() may format any cell).
 * JSON: every column of the row by name, plus "short_id" when id_table is
 * set, plus whatever json_extra() adds.
 */
struct cli_view {
	const char *const *headers;
	int ncols;
	const char *id_table;
	const char *(*cell)(struct cli_ctx *ctx, sqlite3_stmt *st, int col, char *buf, size_t len);
	void (*json_extra)(struct cli_ctx *ctx, sqlite3_stmt *st, json_t *row);
	const char *empty;        /* printed instead of an empty table; NULL: headers only */
};

/*
 * Step st to its end and show the rows. With --json the array is stored in
 * into[key] when into is given, else printed. The statement is reset.
 */
int cli_emit(struct cli_ctx *ctx, sqlite3_stmt *st, const struct cli_view *v,
	     json_t *into, const char *key);

/* A display string for a record id: its shortest unique prefix. */
const char *cli_short_id(struct cli_ctx *ctx, const char *table, const char *id,
			 char buf[RL_ID_BUFSZ]);

/* Display money: "1500000.00 IDR" into buf; "" when amount is NULL. */
const char *cli_money(char *buf, size_t len, sqlite3_stmt *st, int amount_col, int currency_col);

/* Run a write: begin, fn, commit; rollback on error. */
int cli_write(struct cli_ctx *ctx, int (*fn)(struct cli_ctx *ctx, void *arg), void *arg);

/* Column text or "" (never NULL). */
const char *cli_col(sqlite3_stmt *st, int i);

/* One "  name   value" line of a show; the lines of a multi-line value
 * (notes) are indented under the first so the layout stays readable. */
void cli_print_field(const char *name, const char *value);
/* The same with the names `width` wide (a show's shorter labels). */
void cli_print_labelled(const char *name, int width, const char *value);


#endif
