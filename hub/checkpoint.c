/*
 * checkpoint.c — relasi-hub serve's WAL checkpointer (checkpoint.h): a
 * thread woken by the commits it watches (the sessions', the audit
 * writer's) that copies the WAL back into hub.db off the devices' critical
 * path, and folds and truncates it once the hub is quiet.
 */
#include "checkpoint.h"
#include "hub.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"

struct hub_checkpointer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int due, stop;
	unsigned long commits;    /* the watched connections' commits so far */
	unsigned long folded;     /* commits when the WAL was last truncated */
	rl_store *store;          /* the thread's own connection */
};

/* SQLite's WAL hook, called in the committing session after each commit:
 * replaces its automatic checkpoint (sqlite3_wal_hook). */
static int on_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	hub_checkpointer *cp = arg;

	(void)db;
	(void)name;
	pthread_mutex_lock(&cp->lock);
	/* The first commit since the last fold wakes the thread too: it waits
	 * untimed while everything is folded, and times the quiet spell from
	 * here on. */
	if (pages >= HUB_CHECKPOINT_PAGES)
		cp->due = 1;
	if (cp->commits++ == cp->folded || cp->due)
		pthread_cond_signal(&cp->wake);
	pthread_mutex_unlock(&cp->lock);
	return SQLITE_OK;
}

/* Wait, with cp->lock held, until a checkpoint is due, serve stops, or no
 * commit has come for HUB_CHECKPOINT_IDLE_MS since one that is not folded
 * yet. Returns 1 for the quiet case. */
static int wait_for_work(hub_checkpointer *cp)
{
	while (!cp->due && !cp->stop) {
		unsigned long seen = cp->commits;
		struct timespec until;

		if (seen == cp->folded) {
			pthread_cond_wait(&cp->wake, &cp->lock);
			continue;
		}
		until = hub_clock_in(CLOCK_MONOTONIC, HUB_CHECKPOINT_IDLE_MS);
		while (!cp->due && !cp->stop &&
		       pthread_cond_timedwait(&cp->wake, &cp->lock, &until) != ETIMEDOUT)
			;
		if (!cp->due && !cp->stop && cp->commits == seen)
			return 1;
	}
	return 0;
}

/* The quiet hub's checkpoint: TRUNCATE, waiting for no one. SQLITE_OK
 * once every frame is in hub.db and the WAL is empty; SQLITE_BUSY when a
 * reader or a writer was in the way (what could be copied was). */
static int fold_and_truncate(sqlite3 *db)
{
	int rc;

	sqlite3_busy_timeout(db, 0);
	rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(db, RL_BUSY_TIMEOUT_MS);
	return rc;
}

static void *checkpoint_main(void *arg)
{
	hub_checkpointer *cp = arg;
	char said[256] = "";
	int stop = 0;

	while (!stop) {
		int rc, quiet;
		unsigned long commits;

		pthread_mutex_lock(&cp->lock);
		quiet = wait_for_work(cp);
		cp->due = 0;
		stop = cp->stop;          /* one last round on the way out */
		commits = cp->commits;
		pthread_mutex_unlock(&cp->lock);
		if (quiet) {
			/* Not folded: the next quiet spell tries again. */
			if ((rc = fold_and_truncate(rl_store_db(cp->store))) == SQLITE_OK) {
				pthread_mutex_lock(&cp->lock);
				cp->folded = commits;
				pthread_mutex_unlock(&cp->lock);
			}
		} else {
			rc = sqlite3_wal_checkpoint_v2(rl_store_db(cp->store), NULL,
						       SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		}
		/* SQLITE_BUSY: another checkpoint runs (a closing connection's),
		 * or someone was in the quiet fold's way; the next commit past
		 * the line or quiet spell tries again. Any other problem
		 * is said once, not at every commit; the WAL keeps every change
		 * meanwhile, so nothing is lost, it only grows. */
		if (rc != SQLITE_OK && rc != SQLITE_BUSY &&
		    strcmp(said, sqlite3_errmsg(rl_store_db(cp->store))) != 0) {
			snprintf(said, sizeof(said), "%s", sqlite3_errmsg(rl_store_db(cp->store)));
			fprintf(stderr, "relasi-hub: checkpoint failed (the WAL keeps growing): %s\n",
				said);
		}
	}
	return NULL;
}

int hub_checkpointer_start(hub_checkpointer **out, const char *dir)
{
	hub_checkpointer *cp;
	int error;

	*out = NULL;
	if (!(cp = calloc(1, sizeof(*cp))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = hub_store_open(&cp->store, dir, 0)) < 0) {
		free(cp);
		return error;
	}
	pthread_mutex_init(&cp->lock, NULL);
	/* the quiet spell is timed on the monotonic clock: a clock set back
	 * must not hold the fold off */
	if (hub_cond_init_monotonic(&cp->wake) != 0) {
		pthread_mutex_destroy(&cp->lock);
		rl_store_close(cp->store);
		free(cp);
		return rl_error_set(RL_ERROR, "cannot start the checkpointer");
	}
	if (pthread_create(&cp->thread, NULL, checkpoint_main, cp) != 0) {
		pthread_cond_destroy(&cp->wake);
		pthread_mutex_destroy(&cp->lock);
		rl_store_close(cp->store);
		free(cp);
		return rl_error_set(RL_ERROR, "cannot start the checkpointer");
	}
	*out = cp;
	return RL_OK;
}

void hub_checkpointer_watch(hub_checkpointer *cp, sqlite3 *db)
{
	if (cp)
		sqlite3_wal_hook(db, on_commit, cp);
}

void hub_checkpointer_stop(hub_checkpointer *cp)
{
	if (!cp)
		return;
	pthread_mutex_lock(&cp->lock);
	cp->stop = 1;
	pthread_cond_signal(&cp->wake);
	pthread_mutex_unlock(&cp->lock);
	pthread_join(cp->thread, NULL);
	pthread_cond_destroy(&cp->wake);
	pthread_mutex_destroy(&cp->lock);
	rl_store_close(cp->store);
	free(cp);
}
