/*
 * checkpoint.c — relasi-hub serve's WAL checkpointer (checkpoint.h): a
 * thread woken by the sessions' commits that copies the WAL back into
 * hub.db off the devices' critical path.
 */
#include "checkpoint.h"
#include "hub.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"

struct hub_checkpointer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int due, stop;
	rl_store *store;          /* the thread's own connection */
};

/* SQLite's WAL hook, called in the committing session after each commit:
 * replaces its automatic checkpoint (sqlite3_wal_hook). */
static int on_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	hub_checkpointer *cp = arg;

	(void)db;
	(void)name;
	if (pages >= HUB_CHECKPOINT_PAGES) {
		pthread_mutex_lock(&cp->lock);
		cp->due = 1;
		pthread_cond_signal(&cp->wake);
		pthread_mutex_unlock(&cp->lock);
	}
	return SQLITE_OK;
}

static void *checkpoint_main(void *arg)
{
	hub_checkpointer *cp = arg;
	char said[256] = "";
	int stop = 0;

	while (!stop) {
		int rc, frames = 0, copied = 0;

		pthread_mutex_lock(&cp->lock);
		while (!cp->due && !cp->stop)
			pthread_cond_wait(&cp->wake, &cp->lock);
		cp->due = 0;
		stop = cp->stop;          /* one last round on the way out */
		pthread_mutex_unlock(&cp->lock);
		rc = sqlite3_wal_checkpoint_v2(rl_store_db(cp->store), NULL, SQLITE_CHECKPOINT_PASSIVE,
					       &frames, &copied);
		/* SQLITE_BUSY: another checkpoint runs (a closing connection's);
		 * the next commit past the line wakes us again. Any other problem
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
	pthread_cond_init(&cp->wake, NULL);
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
