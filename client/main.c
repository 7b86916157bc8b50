/*
 * main.c — relasi, the field rep's and manager's CLI: finds the store, picks
 * the command from the table (git-style "noun verb" words), parses its
 * options from the command's spec, runs it, and turns errors into exit
 * statuses. Every command but `init` and `help` works on an existing store;
 * none needs a network.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELASI_VERSION "0.1.0"

static const struct cli_cmd *const cmd_tables[] = {
	cli_cmds_core, cli_cmds_records, cli_cmds_activity, cli_cmds_query, cli_cmds_io, NULL
};

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

static const struct cli_cmd *find_cmd(char **argv, int argc, size_t *words)
{
	const struct cli_cmd *best = NULL;
	size_t best_words = 0, t;

	for (t = 0; cmd_tables[t]; t++) {
		const struct cli_cmd *c;
		for (c = cmd_tables[t]; c->name; c++) {
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

static void print_commands(FILE *f, const char *group)
{
	size_t t, glen = group ? strlen(group) : 0;

	for (t = 0; cmd_tables[t]; t++) {
		const struct cli_cmd *c;
		for (c = cmd_tables[t]; c->name; c++) {
			if (group && (strncmp(c->name, group, glen) != 0 || c->name[glen] != ' '))
				continue;
			fprintf(f, "  %-16s %s\n", c->name, c->summary);
		}
	}
}

static void print_main_help(FILE *f)
{
	fprintf(f,
		"relasi — offline-first CRM for field sales (version " RELASI_VERSION ")\n\n"
		"usage: relasi [--json] COMMAND [ARGS] [OPTIONS]\n\n"
		"commands:\n");
	print_commands(f, NULL);
	fprintf(f,
		"\nRecords are named by a unique id prefix (like git) or by name.\n"
		"Every listing and show accepts --json. The store lives in $RELASI_HOME,\n"
		"else $XDG_DATA_HOME/relasi, else ~/.local/share/relasi.\n\n"
		"exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 ambiguous,\n"
		"             5 invalid input, 6 store too new, 7 store or file error\n");
}

static void print_cmd_help(const struct cli_args *a)
{
	const struct cli_cmd *c = a->cmd;
	size_t i;

	printf("usage: relasi %s %s\n\n%s\n", c->name, c->usage ? c->usage : "", c->summary);
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
}

static int build_options(struct cli_args *a)
{
	const struct cli_cmd *c = a->cmd;
	const struct rl_table *t = c->model_table ? rl_model_table(c->model_table) : NULL;
	size_t n = 0, i, cap = 0;

	for (i = 0; c->opts && c->opts[i].name; i++)
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
	a->nopts = n;
	return RL_OK;
}

/* Parse argv (after the command words). Returns 0, EXIT_USAGE, or -1 for
 * --help (already printed). */
static int parse_args(struct cli_args *a, int argc, char **argv, int *json)
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
			print_cmd_help(a);
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
		if (a->vals[k])
			return cli_usage_error(a->cmd, "option '--%s' given twice", a->opts[k].name);
		a->vals[k] = value;
	}
	if ((int)a->npos < a->cmd->min_pos)
		return cli_usage_error(a->cmd, "'%s' needs %s", a->cmd->name,
				       a->cmd->usage ? a->cmd->usage : "more arguments");
	if (a->cmd->max_pos >= 0 && (int)a->npos > a->cmd->max_pos)
		return cli_usage_error(a->cmd, "unexpected argument '%s'", a->pos[a->cmd->max_pos]);
	return 0;
}

static int locate_home(struct cli_ctx *ctx)
{
	const char *env = getenv("RELASI_HOME");
	char *dir = NULL;
	size_t len;

	if (env && *env) {
		dir = strdup(env);
	} else if ((env = getenv("XDG_DATA_HOME")) && *env) {
		len = strlen(env) + sizeof("/relasi");
		if ((dir = malloc(len)))
			snprintf(dir, len, "%s/relasi", env);
	} else if ((env = getenv("HOME")) && *env) {
		len = strlen(env) + sizeof("/.local/share/relasi");
		if ((dir = malloc(len)))
			snprintf(dir, len, "%s/.local/share/relasi", env);
	} else {
		return rl_error_set(RL_ENOTFOUND, "set RELASI_HOME (no HOME to find the store in)");
	}
	if (!dir)
		return rl_error_set(RL_ENOMEM, "out of memory");
	len = strlen(dir) + sizeof("/relasi.db");
	if (!(ctx->store_path = malloc(len))) {
		free(dir);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	snprintf(ctx->store_path, len, "%s/relasi.db", dir);
	ctx->home = dir;
	return RL_OK;
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx = { 0 };
	struct cli_args a = { 0 };
	const struct cli_cmd *cmd;
	size_t words;
	int first = 1, status = 0, error;

	while (first < argc && argv[first][0] == '-') {
		if (strcmp(argv[first], "--json") == 0) {
			ctx.json = 1;
		} else if (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
			print_main_help(stdout);
			return 0;
		} else if (strcmp(argv[first], "--version") == 0) {
			printf("relasi " RELASI_VERSION " (schema %d)\n", rl_store_schema_latest());
			return 0;
		} else {
			fprintf(stderr, "relasi: unknown option '%s'\n", argv[first]);
			return EXIT_USAGE;
		}
		first++;
	}
	if (first >= argc) {
		print_main_help(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[first], "help") == 0) {
		if (first + 1 < argc) {
			cmd = find_cmd(argv + first + 1, argc - first - 1, &words);
			if (cmd) {
				a.cmd = cmd;
				if (build_options(&a) == 0)
					print_cmd_help(&a);
				free_args(&a);
				return 0;
			}
			print_commands(stdout, argv[first + 1]);
			return 0;
		}
		print_main_help(stdout);
		return 0;
	}
	cmd = find_cmd(argv + first, argc - first, &words);
	if (!cmd) {
		/* "relasi deal" alone: list what the group offers */
		FILE *f = stderr;
		fprintf(f, "relasi: unknown command '%s'\n", argv[first]);
		fprintf(f, "commands starting with '%s':\n", argv[first]);
		print_commands(f, argv[first]);
		return EXIT_USAGE;
	}
	a.cmd = cmd;
	if ((error = build_options(&a)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	status = parse_args(&a, argc - first - (int)words, argv + first + words, &ctx.json);
	if (status == -1) {
		status = 0;
		goto done;
	}
	if (status)
		goto done;
	if ((error = locate_home(&ctx)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (cmd->needs_store && (error = rl_store_open(&ctx.store, ctx.store_path, 0)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if ((error = cmd->run(&ctx, &a)) < 0)
		status = cli_fail(error);
	else
		status = error; /* a command may return a positive exit status */
done:
	if (fflush(stdout) != 0 && status == 0) {
		fprintf(stderr, "relasi: writing output failed\n");
		status = EXIT_STORE;
	}
	rl_store_close(ctx.store);
	free(ctx.home);
	free(ctx.store_path);
	free_args(&a);
	return status;
}
