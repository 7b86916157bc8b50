/*
 * relasi/error.h — the one error mechanism of librelasi-sync.
 *
 * Every function that can fail returns an int: RL_OK (0) on success, or one
 * of the negative codes below. The human-readable detail ("line 12: 'abc' is
 * not a date") is kept per thread and read with rl_error_message(); the code
 * says what kind of failure it was, so that callers can act on it (the CLI
 * maps codes to exit statuses). Errors pass upward unchanged: a caller that
 * adds context uses rl_error_prefix(), never replaces the message.
 */
#ifndef RELASI_ERROR_H
#define RELASI_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
	RL_OK          =  0,
	RL_ERROR       = -1,  /* anything without a more specific code */
	RL_EUSAGE      = -2,  /* bad command line: unknown option, missing argument */
	RL_ENOTFOUND   = -3,  /* a named record, file or key does not exist */
	RL_EAMBIGUOUS  = -4,  /* a name or id prefix matches more than one record */
	RL_EINVALID    = -5,  /* input failed validation (date, amount, e-mail...) */
	RL_ESTORE      = -6,  /* SQLite reported an error */
	RL_EVERSION    = -7,  /* store schema is newer than this binary */
	RL_ENOMEM      = -8,  /* allocation failed */
	RL_EIO         = -9,  /* reading or writing a file failed */
	RL_ETOOBIG     = -10, /* input exceeds a limit from relasi/limits.h */
	RL_ETIMEOUT    = -11, /* the peer or the network was too slow */
	RL_ECLOSED     = -12, /* the peer closed or the connection was cut */
	RL_EAUTH       = -13, /* authentication or authorisation refused */
	RL_EPROTO      = -14, /* the peer broke the protocol */
	RL_ENET        = -15, /* the peer cannot be reached (refused, no route, DNS) */
	RL_ECLOCK      = -16, /* two clocks are too far apart to sync safely */
	RL_EREUSED     = -17, /* a batch number the hub holds with other changes */
	RL_EBUSY       = -18, /* another process is exchanging this store's changes */
	RL_EDENIED     = -19  /* the user's role may not make this change (relasi/policy.h) */
};

/*
 * Record an error and return its code, so call sites read
 *     return rl_error_set(RL_EINVALID, "'%s' is not a date", s);
 * The message is formatted like printf and truncated to RL_ERROR_MSG_MAX.
 */
int rl_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Put "prefix: " in front of the current message (adds context, keeps cause). */
void rl_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last message set on this thread; "" when none. Never NULL. */
const char *rl_error_message(void);

/* The last code set on this thread (RL_OK when none). */
int rl_error_code(void);

void rl_error_clear(void);

#define RL_ERROR_MSG_MAX 1024

#ifdef __cplusplus
}
#endif
#endif
