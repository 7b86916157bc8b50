/*
 * test_wire.c — frames over an in-memory connection (sync/src/wire.c):
 * a frame's write is given time for its size, as its read is. A big PAGE
 * or PUSH to a peer that reads at a slow link's pace was cut by the plain
 * timeout at every try (the hub gives every frame 30 s: 2 MiB at 32 KiB/s
 * needs 64); the read side already added RL_MIN_LINK_BYTES_PER_S time.
 */
#include "check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relasi/conn.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

#define BODY (1024 * 1024)

struct slow_reader {
	rl_conn *c;
	size_t got;
	int error;
};

/* Reads the whole frame 16 KiB at a time with a nap between: ~0.6 s for a
 * MiB, far above the writer's bare 100 ms and far below its allowance. */
static void *read_slowly(void *arg)
{
	struct slow_reader *r = arg;
	static unsigned char buf[16 * 1024];
	struct timespec nap = { 0, 10 * 1000 * 1000 };

	while (r->got < BODY + 5) {
		size_t want = BODY + 5 - r->got < sizeof(buf) ? BODY + 5 - r->got : sizeof(buf);
		if ((r->error = rl_conn_read(r->c, buf, want, 10000)) < 0)
			return NULL;
		r->got += want;
		nanosleep(&nap, NULL);
	}
	return NULL;
}

int main(void)
{
	rl_conn *a = NULL, *b = NULL;
	struct slow_reader r = { NULL, 0, 0 };
	pthread_t th;
	char *json = malloc(BODY);
	int error;

	CHECK(json != NULL);
	if (!json)
		CHECK_DONE();
	memset(json, ' ', BODY);
	json[0] = '{';
	json[BODY - 1] = '}';
	CHECK_EQ_INT(rl_conn_pipe(&a, &b), 0);
	r.c = b;
	CHECK_EQ_INT(pthread_create(&th, NULL, read_slowly, &r), 0);
	/* 100 ms for the frame itself: without time for its size this fails
	 * with RL_ETIMEOUT after the first few ring-fulls. */
	error = rl_wire_write_text(a, RL_FRAME_PAGE, json, BODY, RL_MAX_FRAME, 100);
	if (error < 0)
		fprintf(stderr, "write: %s\n", rl_error_message());
	CHECK_EQ_INT(error, 0);
	rl_conn_close(a);
	pthread_join(th, NULL);
	CHECK_EQ_INT(r.error, 0);
	CHECK_EQ_INT(r.got, BODY + 5);
	rl_conn_close(b);
	free(json);
	CHECK_DONE();
}
