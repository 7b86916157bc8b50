/*
 * error.c — per-thread last error (code + message) for librelasi-sync.
 */
#include "relasi/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char rl_errmsg[RL_ERROR_MSG_MAX];
static _Thread_local int rl_errcode;

int rl_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rl_errmsg, sizeof(rl_errmsg), fmt, ap);
	va_end(ap);
	rl_errcode = code;
	return code;
}

void rl_error_prefix(const char *fmt, ...)
{
	char old[RL_ERROR_MSG_MAX];
	size_t used;
	va_list ap;

	memcpy(old, rl_errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(rl_errmsg, sizeof(rl_errmsg), fmt, ap);
	va_end(ap);
	/* Append ": old" after the prefix, truncating the tail if it must. */
	used = strlen(rl_errmsg);
	if (used + 2 < sizeof(rl_errmsg)) {
		size_t room = sizeof(rl_errmsg) - used - 2 - 1, n = strlen(old);
		memcpy(rl_errmsg + used, ": ", 2);
		used += 2;
		if (n > room)
			n = room;
		memcpy(rl_errmsg + used, old, n);
		rl_errmsg[used + n] = '\0';
	}
}

const char *rl_error_message(void)
{
	return rl_errmsg;
}

int rl_error_code(void)
{
	return rl_errcode;
}

void rl_error_clear(void)
{
	rl_errmsg[0] = '\0';
	rl_errcode = RL_OK;
}
