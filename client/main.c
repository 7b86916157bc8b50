/*
 * main.c — relasi, the field rep's and manager's CLI. The command framework
 * is relasi/cli.h; this file names the command tables and says where the
 * store is: $RELASI_HOME, else $XDG_DATA_HOME/relasi, else
 * ~/.local/share/relasi. Every command but `init`, `enroll` and `help` works
 * on an existing store; only `sync` needs a network
 * (`bundle export` / `bundle import` carry a sync by file).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#ifndef RELASI_VERSION
#error "RELASI_VERSION comes from CMakeLists.txt (project VERSION)"
#endif

static const struct cli_cmd *const cmd_tables[] = {
	cli_cmds_core, cli_cmds_records, cli_cmds_activity, cli_cmds_query, cli_cmds_io,
	cli_cmds_sync, cli_cmds_bundle, rl_report_cmds, cli_cmds_marketing, cli_cmds_campaign,
	NULL
};

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

static int prepare(struct cli_ctx *ctx, const struct cli_args *a)
{
	int error;

	if ((error = locate_home(ctx)) < 0)
		return error;
	if (a->cmd->needs_store)
		return rl_store_open(&ctx->store, ctx->store_path,
				     a->cmd->needs_store == CLI_STORE_FEW ? RL_STORE_UNMAPPED : 0);
	return RL_OK;
}

static const struct cli_program relasi = {
	"relasi", RELASI_VERSION,
	"relasi — offline-first CRM for field sales (version " RELASI_VERSION ")",
	"Records are named by a unique id prefix (like git) or by name.\n"
	"Every listing and show accepts --json. The store lives in $RELASI_HOME,\n"
	"else $XDG_DATA_HOME/relasi, else ~/.local/share/relasi.\n\n"
	"exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 ambiguous,\n"
	"             5 invalid input, 6 store too new, 7 store or file error,\n"
	"             8 sync failed: hub unreachable, refused, or clocks too far apart,\n"
	"             9 not allowed for your role (the hub would refuse it)\n",
	cmd_tables, prepare, NULL, NULL
};

int main(int argc, char **argv)
{
	/* New stores are written from the build's images (relasi/store.h). */
	rl_store_set_images(&rl_store_builtin_images);
	return cli_main(&relasi, argc, argv);
}
