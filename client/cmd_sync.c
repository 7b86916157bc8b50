/*
 * cmd_sync.c — talking to the hub: enroll, sync, conflicts.
 */
#include "cli.h"

const struct cli_cmd cli_cmds_sync[] = {
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
