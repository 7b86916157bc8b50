/*
 * server.c — relasi-hub serve: the TLS listener and one thread per
 * connection. A connection's thread owns its own SQLite connection to the
 * hub store (WAL lets pulls read while a push writes; BEGIN IMMEDIATE and the
 * busy timeout queue the writers), so a slow or hostile peer only ever holds
 * its own thread, bounded by the handshake and read timeouts of
 * relasi/limits.h, and never the listener or other devices; and a flood of
 * unauthenticated connections only ever takes their own share of the slots
 * ("Admission" below).
 *
 * Session grammar (sync/PROTOCOL.md):
 *   no certificate:  ENROLL -> ENROLLED | ERROR, close
 *   certificate:     HELLO -> WELCOME, { PUSH -> PUSHED | PULL -> PAGE |
 *                    SNAPSHOT -> SNAP CHUNK... }, BYE
 *
 * Test hook: RELASI_HUB_FAULT=ack-lost:N closes the connection right after
 * the N-th push has committed, before its answer is sent; kill-after-commit:N
 * SIGKILLs the hub at the same point. They exist so that tests can prove a
 * lost acknowledgement and a crash lose and duplicate nothing.
 * snapshot-cut:N closes the connection of the first SNAPSHOT the process
 * serves after its N-th CHUNK; snapshot-pause:N holds that snapshot for 10 s
 * after its N-th CHUNK (a device killed, or other devices pushing, while a
 * snapshot is half sent), less when the hub stops or 0.5 s after a session
 * that pushed meanwhile has ended; no-snapshot plays a hub from before snapshots (no
 * "snapshot" in WELCOME, SNAPSHOT an unexpected frame); image-cut:N closes
 * a snapshot image's connection after its N-th IMAGE frame.
 * (audit-kill-after-ref:N, in audit.c, kills the audit writer between its
 * git ref update and the store's record of it.)
 *
 * The WAL is copied back into hub.db by the checkpointer's thread
 * (checkpoint.c), woken by the sessions' commits, not by the pushes.
 *
 * The audit history (audit.c) is written by one more thread, woken after
 * each push's answer is sent; RELASI_HUB_AUDIT=off leaves it out, for the
 * benchmark's figure without it. The writer adds a pack per run of commits
 * (audit_odb.c); when the hub has been quiet for a round, the same thread
 * merges the small packs (and packs an older hub's loose objects), and
 * after a round that wrote, only when they are many (audit_pack.c).
 */
#define _GNU_SOURCE   /* accept4 */
#include "audit_pack.h"
#include "hub.h"
#include "backup.h"
#include "cert.h"
#include "checkpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relasi/conn.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

struct server {
	const char *dir;
	const char *name;        /* told to devices in WELCOME */
	int read_ms;             /* longest wait for a frame once authenticated */
	int preauth_ms;          /* handshake and everything before authentication */
	rl_tls_server *tls;
	pthread_mutex_t lock;
	/* One writer at a time, queued here rather than in SQLite's busy
	 * handler: with 200 devices pushing at once the busy handler's sleeps
	 * and its timeout turned a queue into refusals ("database is locked").
	 * Readers (pulls) do not take it: WAL lets them run beside the writer. */
	pthread_mutex_t write_lock;
	pthread_cond_t idle;
	int active;             /* connection threads, dropped ones included */
	/* Connections not yet authenticated, oldest first (admission below):
	 * a peer without a device certificate costs a thread and a store
	 * handle for up to RL_PREAUTH_TIMEOUT_MS, so they get their own,
	 * smaller share of the slots, and a flood is made to pay for itself. */
	struct conn_job *preauth_head, *preauth_tail;
	int max_conn, max_preauth;  /* RL_MAX_CONNECTIONS and RL_MAX_PREAUTH, or fewer
				     * where the descriptor limit is lower */
	int preauth;            /* entries in that list */
	int dropping;           /* dropped to make room, their threads not yet ended */
	/* The audit writer (audit.c): one thread that writes the history from
	 * hub_log, woken after each push, so the git commit is never on a
	 * device's critical path. RELASI_HUB_AUDIT=off leaves it out (for the
	 * benchmark's "without history" figure; the next start catches up). */
	int audit_on;
	pthread_t audit_thread;
	pthread_mutex_t audit_lock;
	pthread_cond_t audit_wake;
	int audit_pending, audit_stop;
	long pack_loose;              /* hub.json audit_pack_loose: < 0 never, 0 default */
	int pack_packs;
	long pushes;            /* for the fault hooks */
	int fault_kind;         /* 0 none, 1 ack-lost, 2 kill-after-commit,
				 * 3 snapshot-cut, 4 snapshot-pause, 5 no-snapshot,
				 * 6 image-cut */
	long fault_at;
	long snapshots;         /* snapshots begun (the snapshot hooks act on the first) */
	/* Snapshot images (image.c): built by their own thread when the hub
	 * is quiet, once its log holds image_min changes (<= 0: never). */
	long image_min;
	int image_on, image_stop;
	pthread_t image_thread;
	pthread_cond_t image_wake;    /* with lock, on CLOCK_MONOTONIC: a stop ends
				       * the image thread's nap */
	hub_checkpointer *checkpointer;  /* NULL: sessions checkpoint themselves */
	long long last_active_ms; /* last push or session end; monotonic, atomic */
	long pushers_done;        /* sessions that pushed and ended (the pause hook) */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* The store of the connection being handshaken on this thread, for the
 * certificate check callback; NULL until something needs it. */
static _Thread_local rl_store **thread_store;

/* Open the hub's store for this connection, once. Not before the
 * handshake needs it: a plain-TCP client sending garbage, or a TLS client
 * that never gets as far as a certificate, costs no store (each open
 * parses the whole schema); the revocation check opens it when a device's
 * certificate arrives, an enrolment once its handshake is done. */
static _Thread_local char store_failed[512];   /* why it could not, for the log */

static int connection_store(struct server *srv, rl_store **s)
{
	if (*s)
		return RL_OK;
	if (hub_store_open(s, srv->dir, 0) < 0) {
		snprintf(store_failed, sizeof(store_failed), "%s", rl_error_message());
		return -1;
	}
	hub_checkpointer_watch(srv->checkpointer, rl_store_db(*s));
	return RL_OK;
}

static int peer_check(void *ctx, const char *cn, const char *fingerprint)
{
	if (!thread_store || connection_store(ctx, thread_store) < 0)
		return -1;
	return hub_device_lookup(*thread_store, cn, fingerprint, NULL) == RL_OK ? 0 : -1;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct conn_job {
	struct server *srv;
	int fd;
	long long accepted_ms;   /* the pre-authentication phase runs from here */
	char addr[64];
	/* While the job is in srv->preauth_head's list (under srv->lock):
	 * guard_fd is a second descriptor of the same socket, so that the
	 * listener can shut it down even after the connection's own fd was
	 * closed (the handshake closes it on failure) without ever touching
	 * a reused descriptor number; source is the peer's address as the
	 * admission rule counts it. */
	int guard_fd;
	unsigned char source[8];
	int in_preauth, dropped;
	struct conn_job *prev, *next;
};

/*
 * Admission (under srv->lock). A connection is admitted while fewer than
 * RL_MAX_CONNECTIONS are served and fewer than RL_MAX_PREAUTH are still
 * unauthenticated (fewer of both under a low descriptor limit:
 * fit_fd_limit). When either is full, the hub makes room by dropping one
 * unauthenticated connection: the oldest from the source holding the most
 * of them (the model is sshd's MaxStartups with a per-source share). A
 * flood from one address then only ever evicts itself, while a device from
 * anywhere else -- and, since the oldest goes first, a device behind the
 * flooder's own NAT whose handshake takes milliseconds -- still gets in.
 * Only when every slot holds an authenticated session is a newcomer
 * refused (the device syncs again later). Authenticated peers are not
 * dropped: they are accountable (revocable) and bounded by the read
 * timeout.
 *
 * The source is an IPv4 address, or the /64 of an IPv6 one (what one
 * customer line gets), an IPv4-mapped IPv6 address counted as IPv4.
 */
static void source_of(const struct sockaddr_storage *ss, unsigned char out[8])
{
	memset(out, 0, 8);
	if (ss->ss_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			memcpy(out, a->s6_addr + 12, 4);
		else
			memcpy(out, a->s6_addr, 8);
	}
}

static void preauth_unlink(struct server *srv, struct conn_job *job)
{
	if (job->prev)
		job->prev->next = job->next;
	else
		srv->preauth_head = job->next;
	if (job->next)
		job->next->prev = job->prev;
	else
		srv->preauth_tail = job->prev;
	job->prev = job->next = NULL;
	job->in_preauth = 0;
	srv->preauth--;
	close(job->guard_fd);
	job->guard_fd = -1;
}

/* The connection is authenticated or over: it leaves the list. */
static void preauth_leave(struct server *srv, struct conn_job *job)
{
	pthread_mutex_lock(&srv->lock);
	if (job->in_preauth)
		preauth_unlink(srv, job);
	pthread_mutex_unlock(&srv->lock);
}

/* Drop the oldest unauthenticated connection of the source that holds the
 * most; 0 if one was dropped, -1 if there is none. */
static int preauth_drop_one(struct server *srv)
{
	struct conn_job *j, *k, *victim = NULL;
	int best = 0;

	/* Quadratic in RL_MAX_PREAUTH at worst, and only when full. Oldest
	 * first, and only a strictly larger count replaces the victim: each
	 * source is first met at its oldest connection, so that is the one
	 * kept (and of a tie, the source met first). */
	for (j = srv->preauth_head; j; j = j->next) {
		int n = 0;
		for (k = srv->preauth_head; k; k = k->next)
			n += memcmp(j->source, k->source, sizeof(j->source)) == 0;
		if (n > best) {
			best = n;
			victim = j;
		}
	}
	if (!victim)
		return -1;
	/* The thread sees its reads fail and ends; it is counted in "active"
	 * until then, and in "dropping" so that it does not block the slot. */
	shutdown(victim->guard_fd, SHUT_RDWR);
	victim->dropped = best;
	preauth_unlink(srv, victim);
	srv->dropping++;
	return 0;
}

/* Admit job (under srv->lock): 0 admitted, -1 refused. */
static int admit(struct server *srv, struct conn_job *job)
{
	if (srv->active >= srv->max_conn + srv->max_preauth)
		return -1;     /* dropped threads slow to end: the hard bound */
	if (srv->active - srv->dropping >= srv->max_conn || srv->preauth >= srv->max_preauth)
		if (preauth_drop_one(srv) < 0)
			return -1;
	if ((job->guard_fd = fcntl(job->fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -1;
	job->prev = srv->preauth_tail;
	job->next = NULL;
	if (srv->preauth_tail)
		srv->preauth_tail->next = job;
	else
		srv->preauth_head = job;
	srv->preauth_tail = job;
	job->in_preauth = 1;
	srv->preauth++;
	srv->active++;
	return 0;
}

static const char *error_code(int error)
{
	switch (error) {
	case RL_EPROTO: return "proto";
	case RL_ETOOBIG: return "limit";
	case RL_EAUTH: return "auth";
	case RL_EINVALID: return "invalid";
	case RL_EREUSED: return "batch";
	default: return "internal";
	}
}

static int fault_now(struct server *srv)
{
	long n;
	pthread_mutex_lock(&srv->lock);
	n = ++srv->pushes;
	pthread_mutex_unlock(&srv->lock);
	return (srv->fault_kind == 1 || srv->fault_kind == 2) && n == srv->fault_at;
}

/* Where a snapshot's frames go (hub_snapshot's send), with the fault hooks. */
struct snap_out {
	struct server *srv;
	rl_conn *c;
	long chunks;
	int hooked;             /* the first snapshot of the process */
};

static int snap_send(void *ctx, int type, json_t *msg)
{
	struct snap_out *o = ctx;
	int error = rl_wire_write(o->c, type, msg, RL_MAX_FRAME, o->srv->read_ms);

	if (error < 0 || type != RL_FRAME_CHUNK || !o->hooked || ++o->chunks != o->srv->fault_at)
		return error;
	if (o->srv->fault_kind == 3) {
		fprintf(stderr, "relasi-hub: fault injection: snapshot cut after chunk %ld\n", o->chunks);
		return rl_error_set(RL_ECLOSED, "snapshot cut (fault injection)");
	}
	fprintf(stderr, "relasi-hub: fault injection: snapshot paused after chunk %ld\n", o->chunks);
	/* 10 s; or until the hub is asked to stop (a test that killed the
	 * device need not wait for the rest); or 0.5 s after a session that
	 * pushed meanwhile has ended (the other device's push the test
	 * makes while the snapshot is held has committed). */
	{
		long pushers = __atomic_load_n(&o->srv->pushers_done, __ATOMIC_RELAXED);
		int i, after = -1;
		for (i = 0; i < 100 && !stop_requested && (after < 0 || i < after); i++) {
			struct timespec nap = { 0, 100 * 1000000L };
			nanosleep(&nap, NULL);
			if (after < 0 &&
			    __atomic_load_n(&o->srv->pushers_done, __ATOMIC_RELAXED) != pushers)
				after = i + 5;
		}
	}
	return stop_requested ? rl_error_set(RL_ECLOSED, "the hub is stopping") : RL_OK;
}

/* Wake the audit writer: something was committed. */
static void audit_notify(struct server *srv)
{
	if (!srv->audit_on)
		return;
	pthread_mutex_lock(&srv->audit_lock);
	srv->audit_pending = 1;
	pthread_cond_signal(&srv->audit_wake);
	pthread_mutex_unlock(&srv->audit_lock);
}

/* Seconds between catch-ups without a push: picks up what admin commands
 * committed from other processes when they could not write it themselves. */
#define AUDIT_IDLE_S 5
/* While pushes keep coming, the writer starts a round at most this often:
 * each round publishes its commits as one pack with a few fsyncs
 * (audit.c), and a round per push made a pack per push. The history lags
 * the store by about this much more when busy. */
#define AUDIT_ROUND_MS 500

static void *audit_main(void *arg)
{
	struct server *srv = arg;
	rl_store *s = NULL;
	hub_audit *a = NULL;
	char last_error[RL_ERROR_MSG_MAX + 1] = "";
	int stop = 0, idle = 0;

	while (!stop) {
		struct hub_audit_pack_stats st;
		long written = 0;
		long long round_start = now_ms();
		int error = RL_OK;
		/* Its commits wake the checkpointer too: left to SQLite's own
		 * checkpoint, a commit that found the WAL past 1000 pages copied
		 * it back there and then, under the hub's write lock, which the
		 * writer holds for its commit (audit.c record_head), while the
		 * pushes waited. */
		if (!s && (error = hub_store_open(&s, srv->dir, 0)) == 0)
			hub_checkpointer_watch(srv->checkpointer, rl_store_db(s));
		if (error == 0 && !a && (error = hub_audit_open(&a, srv->dir, 1)) == 0) {
			hub_audit_set_store_lock(a, &srv->write_lock);
			hub_audit_set_pack_limits(a, srv->pack_loose, srv->pack_packs, &srv->audit_stop);
		}
		if (error == 0)
			error = hub_audit_catch_up(a, s, &written);
		/* Packing (audit_pack.c) waits for a quiet moment, a round with no
		 * push for AUDIT_IDLE_S and nothing to write, unless the packs the
		 * rounds add grow many first (busy); each call is bounded. */
		if (error == 0 && (written > 0 || idle) && srv->pack_loose >= 0) {
			long long t0 = now_ms();
			if ((error = hub_audit_maintain(a, written > 0, &st)) == 0 && st.changed)
				fprintf(stderr, "relasi-hub: audit history packed: %ld loose objects, "
					"%d packs merged, %d packs (%lld ms)\n", st.loose_packed,
					st.packs_merged, st.packs, now_ms() - t0);
			if (error < 0 && __atomic_load_n(&srv->audit_stop, __ATOMIC_RELAXED))
				error = RL_OK;    /* stopped for the hub's stop: not a problem */
		}
		/* Say each new problem once, not every few seconds. */
		if (error < 0 && strcmp(last_error, rl_error_message()) != 0) {
			snprintf(last_error, sizeof(last_error), "%s", rl_error_message());
			fprintf(stderr, "relasi-hub: audit history not written: %s\n", last_error);
		} else if (error == 0) {
			last_error[0] = '\0';
		}
		if (error < 0 && a && error != RL_ESTORE) {
			hub_audit_free(a);        /* reopen: the repository may have been repaired */
			a = NULL;
		}
		pthread_mutex_lock(&srv->audit_lock);
		if (written > 0 && now_ms() - round_start < AUDIT_ROUND_MS) {
			struct timespec until = hub_clock_in(CLOCK_REALTIME,
							 AUDIT_ROUND_MS - (now_ms() - round_start));
			while (!srv->audit_stop &&
			       pthread_cond_timedwait(&srv->audit_wake, &srv->audit_lock, &until) !=
			       ETIMEDOUT)
				;
		}
		idle = 0;
		if (!srv->audit_pending && !srv->audit_stop) {
			struct timespec until = hub_clock_in(CLOCK_REALTIME, AUDIT_IDLE_S * 1000LL);
			idle = pthread_cond_timedwait(&srv->audit_wake, &srv->audit_lock, &until) ==
			       ETIMEDOUT && !srv->audit_pending;
		}
		/* On stop, one more round writes what the last sessions committed. */
		stop = srv->audit_stop && !srv->audit_pending;
		srv->audit_pending = 0;
		pthread_mutex_unlock(&srv->audit_lock);
	}
	hub_audit_free(a);
	rl_store_close(s);
	return NULL;
}

/* Quiet this long (no session, no push) before an image is built: a
 * build reads the whole store and takes a core's worth of work and more
 * for a while, which a device pulling or pushing should not wait for. */
#define IMAGE_IDLE_MS   3000
#define IMAGE_RETRY_MS  60000   /* after a failed build */

#define CERT_CHECK_MS   (24LL * 3600 * 1000)   /* the daily certificate check */

static void *image_main(void *arg)
{
	struct server *srv = arg;
	rl_store *s = NULL;
	long long failed_at = -IMAGE_RETRY_MS, checked_at = 0;

	/* Naps of 250 ms that a stop cuts short; a look at the log and
	 * image.json at most every 2 s. */
	while (!__atomic_load_n(&srv->image_stop, __ATOMIC_RELAXED)) {
		struct hub_image img;
		struct timespec until = hub_clock_in(CLOCK_MONOTONIC, 250);
		long long t0;
		int due = 0, busy, error;

		pthread_mutex_lock(&srv->lock);
		while (!__atomic_load_n(&srv->image_stop, __ATOMIC_RELAXED) &&
		       pthread_cond_timedwait(&srv->image_wake, &srv->lock, &until) != ETIMEDOUT)
			;
		busy = srv->active > 0;
		pthread_mutex_unlock(&srv->lock);
		t0 = now_ms();
		if (__atomic_load_n(&srv->image_stop, __ATOMIC_RELAXED) || busy ||
		    t0 - __atomic_load_n(&srv->last_active_ms, __ATOMIC_RELAXED) < IMAGE_IDLE_MS ||
		    t0 - failed_at < IMAGE_RETRY_MS || t0 - checked_at < 2000)
			continue;
		checked_at = t0;
		if (!s && (error = hub_store_open(&s, srv->dir, 0)) < 0) {
			fprintf(stderr, "relasi-hub: snapshot image not built: %s\n", rl_error_message());
			failed_at = t0;
			continue;
		}
		if (hub_image_due(s, srv->dir, srv->image_min, &due) < 0 || !due)
			continue;
		if ((error = hub_image_build(srv->dir, &srv->image_stop, &img)) == 0)
			fprintf(stderr, "relasi-hub: snapshot image built: %lld records, %lld fields "
				"at change %lld, %lld MiB (%lld MiB compressed) in %lld ms\n", img.rows,
				img.fields, img.seq, img.size >> 20, img.bytes >> 20, img.built_ms);
		else if (!__atomic_load_n(&srv->image_stop, __ATOMIC_RELAXED)) {
			fprintf(stderr, "relasi-hub: snapshot image not built: %s\n", rl_error_message());
			failed_at = now_ms();
		}
	}
	rl_store_close(s);
	return NULL;
}

/* A device's last contact and the cursor it holds (-1: not said), when
 * either differs from what its lookup read (hub_device_seen): after its
 * WELCOME, and at its BYE, which carries the cursor its pulls left it. A
 * failure to record them is no reason to refuse the sync; it is said in
 * the log. */
static void note_seen(struct server *srv, rl_store *s, struct hub_peer *peer, long long cursor)
{
	int error;

	if (!hub_device_seen_due(s, peer, cursor))
		return;
	pthread_mutex_lock(&srv->write_lock);
	error = hub_device_seen(s, peer, cursor);
	pthread_mutex_unlock(&srv->write_lock);
	if (error < 0)
		fprintf(stderr, "relasi-hub: device %.12s: %s\n", peer->device, rl_error_message());
}

/* A peer without a certificate gets what is left of the pre-authentication
 * time (RL_PREAUTH_TIMEOUT_MS from its accept, handshake included) for its
 * ENROLL, not a fresh period of its own. */
static void serve_enrolment(struct server *srv, rl_store *s, rl_conn *c, const char *addr,
			    long long accepted_ms)
{
	json_t *req = NULL, *resp = NULL;
	long long left = srv->preauth_ms - (now_ms() - accepted_ms);
	int type, error, enroll = 0;

	/* (A frame read adds ~1 s for 16 KiB at the slowest link.) */
	if (left <= 0)
		error = rl_error_set(RL_ETIMEOUT, "no enrolment within %d ms", srv->preauth_ms);
	else
		error = rl_wire_read(c, RL_MAX_FRAME_PREAUTH, (int)left, &type, &req);
	if (error == 0 && !(enroll = type == RL_FRAME_ENROLL))
		error = rl_error_set(RL_EAUTH, "a client certificate is required");
	if (error == 0) {
		pthread_mutex_lock(&srv->write_lock);
		error = hub_enroll(s, srv->dir, req, &resp);
		pthread_mutex_unlock(&srv->write_lock);
	}
	if (error == 0) {
		rl_wire_write(c, RL_FRAME_ENROLLED, resp, RL_MAX_FRAME_PREAUTH, srv->preauth_ms);
		fprintf(stderr, "relasi-hub: enrolled device %s for %s from %s\n",
			json_string_value(json_object_get(resp, "device")),
			json_string_value(json_object_get(resp, "login")), addr);
	} else {
		if (error != RL_ECLOSED && error != RL_ETIMEOUT)
			/* An ENROLL refused for its token says "token"; any
			 * other frame without a certificate is "auth". */
			rl_wire_error(c, error == RL_EAUTH && enroll ? "token" : error_code(error),
				      rl_error_message(), 2000);
		fprintf(stderr, "relasi-hub: refused enrolment from %s: %s\n", addr, rl_error_message());
	}
	json_decref(req);
	json_decref(resp);
}

/* A session's frame buffers above this are freed after each frame
 * (a batch of 4000 changes is ~0.5 MiB of JSON). */
#define KEEP_FRAME_BYTES (1024 * 1024)

/* A session lasts as long as its device sends frames in time; a device
 * revoked, or a user deleted or given another role, meanwhile must not be
 * served on as before: the device is looked up again (as the handshake
 * did: CN, fingerprint, revocation, user) before every frame that reads or
 * writes the store, and the role taken from there. */
static void serve_device(struct server *srv, rl_store *s, rl_conn *c, const char *cn,
			 const char *fp, const char *addr)
{
	struct hub_peer peer;
	struct hub_stats st;
	json_t *req = NULL, *resp = NULL;
	char *resp_text = NULL;       /* a PUSHED answer as recorded, or a PAGE */
	unsigned char *frame = NULL;  /* the frame read, kept for the next one */
	size_t frame_cap = 0, frame_len;
	struct rl_push push;          /* a PUSH, read without a JSON tree (relasi/push.h) */
	long long t0 = now_ms();
	unsigned long long in, out;
	int type, error, hello = 0, answered = 0;   /* answered: an ERROR already sent */
	int pulled = 0;               /* a snapshot comes before the first PULL */
	long long bye_cursor = -1;    /* the cursor its BYE said */

	memset(&st, 0, sizeof(st));
	memset(&push, 0, sizeof(push));
	memset(&peer, 0, sizeof(peer));
	if (strlen(cn) >= sizeof(peer.device) || hub_device_lookup(s, cn, fp, &peer) < 0) {
		rl_wire_error(c, "auth", "device not enrolled", 2000);
		return;
	}
	for (;;) {
		json_decref(req);
		json_decref(resp);
		req = resp = NULL;
		free(resp_text);
		resp_text = NULL;
		/* Buffers are kept from frame to frame, but not big ones: a device
		 * idle after a large frame holds no more than after a batch. */
		if (frame_cap > KEEP_FRAME_BYTES) {
			free(frame);
			frame = NULL;
			frame_cap = 0;
		}
		if (push.arena_cap > KEEP_FRAME_BYTES)
			rl_push_free(&push);
		if ((error = rl_wire_read_raw(c, RL_MAX_FRAME, srv->read_ms, &frame, &frame_cap,
					      &frame_len)) < 0)
			break;
		type = frame[0];
		if (!hello && type != RL_FRAME_HELLO) {
			error = rl_error_set(RL_EPROTO, "HELLO must come first");
			break;
		}
		if ((error = type == RL_FRAME_PUSH
			     ? rl_push_parse(&push, frame + 1, frame_len - 1)
			     : rl_wire_decode(frame, frame_len, &type, &req)) < 0)
			break;
		/* (HELLO comes first: the lookup above has just been made.) */
		if (type != RL_FRAME_PUSH && type != RL_FRAME_BYE && type != RL_FRAME_HELLO &&
		    (error = hub_device_lookup(s, cn, fp, &peer)) < 0)
			break;
		if (type == RL_FRAME_HELLO) {
			json_t *hlc = json_object_get(req, "hlc"), *proto = json_object_get(req, "proto"), *v;
			json_t *wall = json_object_get(req, "wall");
			json_t *hepoch = json_object_get(req, "epoch");
			json_t *hcursor = json_object_get(req, "cursor"), *hacked = json_object_get(req, "acked");
			json_t *hwit = json_object_get(req, "witness");
			long long ahead = 0, restart;
			size_t i;
			int speaks = 0, restamp = 0;
			/* Stamps and clocks are never negative; a bound here also
			 * keeps the differences below from overflowing. */
			if (hello || !json_is_integer(hlc) || json_integer_value(hlc) < 0 ||
			    !json_is_array(proto) || json_array_size(proto) > 16 ||
			    (wall && (!json_is_integer(wall) || json_integer_value(wall) < 0)) ||
			    (hepoch && !json_is_string(hepoch)) ||
			    (hcursor && (!json_is_integer(hcursor) || json_integer_value(hcursor) < 0)) ||
			    (hacked && (!json_is_integer(hacked) || json_integer_value(hacked) < 0)) ||
			    (hwit && (!json_is_array(hwit) || json_array_size(hwit) != 2 ||
				      !json_is_integer(json_array_get(hwit, 0)) ||
				      !json_is_integer(json_array_get(hwit, 1)) ||
				      json_integer_value(json_array_get(hwit, 0)) < 1))) {
				error = rl_error_set(RL_EPROTO, "bad HELLO");
				break;
			}
			json_array_foreach(proto, i, v)
				speaks |= json_is_integer(v) && json_integer_value(v) == RL_PROTO_VERSION;
			if (!speaks) {
				rl_wire_error(c, "version", "this hub speaks protocol version 1 only", 2000);
				answered = 1;
				error = rl_error_set(RL_EPROTO, "speaks no protocol version of this hub");
				break;
			}
			/* A device that sends its wall clock is judged by it: a clock right
			 * now whose stamps are from the future (made while it was wrong)
			 * is told to re-stamp them, not refused until real time catches up.
			 * Its stamps are not adopted either way. */
			if (wall && json_integer_value(wall) - rl_store_now_ms(s) >
				    rl_store_hlc(s)->max_drift_ms)
				ahead = json_integer_value(wall) - rl_store_now_ms(s);
			else if (rl_hlc_receive(rl_store_hlc(s), json_integer_value(hlc), NULL) < 0) {
				if (wall)
					restamp = 1;
				else
					ahead = rl_hlc_physical_ms(json_integer_value(hlc)) -
						rl_store_now_ms(s);
			}
			if (ahead) {
				/* Said from the device's side: it is the one to fix. */
				char why[160];
				snprintf(why, sizeof(why), "this device's clock is %lld min ahead of the "
					 "hub's (limit %lld min); set the device's clock",
					 ahead / 60000, (long long)rl_store_hlc(s)->max_drift_ms / 60000);
				rl_wire_error(c, "clock", why, 2000);
				answered = 1;
				error = rl_error_set(RL_ECLOCK, "%s", why);
				break;
			}
			hello = 1;
			/* A device ahead of this store's history: the store was put
			 * back from an older copy; a new epoch makes every device
			 * send again what it lost (epoch.c). Before WELCOME, which
			 * then carries the new epoch. */
			if ((error = hub_epoch_check_device(s, peer.device, json_string_value(hepoch),
							    hcursor ? json_integer_value(hcursor) : -1,
							    hacked ? json_integer_value(hacked) : -1,
							    hwit ? json_integer_value(json_array_get(hwit, 0)) : 0,
							    hwit ? json_integer_value(json_array_get(hwit, 1)) : 0,
							    &restart)) < 0)
				break;
			/* "snapshot": the format of SNAPSHOT this hub serves; a device
			 * asks for one only when it sees the key (snapshot.c). */
			/* "wall": the hub's wall clock, by which a device judges its
			 * own; "hlc" may run up to 5 min ahead of it (stamps of
			 * devices whose clocks run fast are adopted that far). */
			resp = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:i}", "proto",
					 RL_PROTO_VERSION, "hub", srv->name, "device", peer.device,
					 "user", peer.user, "role", peer.role,
					 "hlc", (json_int_t)rl_hlc_now(rl_store_hlc(s)),
					 "wall", (json_int_t)rl_store_now_ms(s),
					 "restamp", restamp, "snapshot", RL_SNAPSHOT_FORMAT);
			if (resp && srv->fault_kind == 5)
				json_object_del(resp, "snapshot");
			/* The hub's history and the device's last batch here. */
			if (resp && (error = hub_tell_device(s, peer.device, resp, "batch")) < 0)
				break;
			error = rl_wire_write(c, RL_FRAME_WELCOME, resp, RL_MAX_FRAME, srv->read_ms);
			if (error == 0)         /* its cursor: at its BYE, past the pulls */
				note_seen(srv, s, &peer, -1);
		} else if (type == RL_FRAME_PUSH) {
			pthread_mutex_lock(&srv->write_lock);
			/* Under the lock: a revocation committed before this batch
			 * is applied is seen. */
			if ((error = hub_device_lookup(s, cn, fp, &peer)) == 0)
				error = hub_push_read(s, &peer, &push, &resp_text, &st);
			pthread_mutex_unlock(&srv->write_lock);
			__atomic_store_n(&srv->last_active_ms, now_ms(), __ATOMIC_RELAXED);
			if (error < 0)
				break;
			/* Before the fault hooks: a kill there must find the
			 * history behind the store and prove it catches up. */
			if (fault_now(srv)) {
				if (srv->fault_kind == 2) {
					fprintf(stderr, "relasi-hub: fault injection: killed after commit\n");
					raise(SIGKILL);
				}
				fprintf(stderr, "relasi-hub: fault injection: acknowledgement dropped\n");
				error = RL_ECLOSED;
				break;
			}
			error = rl_wire_write_text(c, RL_FRAME_PUSHED, resp_text, strlen(resp_text),
						   RL_MAX_FRAME, srv->read_ms);
			audit_notify(srv);      /* after the answer: off the device's path */
		} else if (type == RL_FRAME_PULL) {
			long had = st.pulled;
			pulled = 1;
			if ((error = hub_pull_text(s, &peer, req, &resp_text, &st)) < 0)
				break;
			error = rl_wire_write_text(c, RL_FRAME_PAGE, resp_text, strlen(resp_text),
						   RL_MAX_FRAME, srv->read_ms);
			if (error < 0)          /* the log counts what reached the device */
				st.pulled = had;
		} else if (type == RL_FRAME_SNAPSHOT && srv->fault_kind != 5) {
			struct snap_out so = { srv, c, 0, 0 };
			int served = 0;
			if (pulled) {
				error = rl_error_set(RL_EPROTO, "SNAPSHOT after a PULL");
				break;
			}
			pthread_mutex_lock(&srv->lock);
			so.hooked = (srv->fault_kind == 3 || srv->fault_kind == 4) && srv->snapshots++ == 0;
			pthread_mutex_unlock(&srv->lock);
			/* The prebuilt image when the device takes one and it is
			 * current; else the snapshot record by record. */
			if ((error = hub_image_serve(s, srv->dir, req, c, srv->read_ms,
						     srv->fault_kind == 6 ? srv->fault_at : 0, &st,
						     &served)) < 0)
				break;
			if (!served && (error = hub_snapshot(s, &peer, req, snap_send, &so, &st)) < 0)
				break;
		} else if (type == RL_FRAME_BYE) {
			json_t *bcursor = json_object_get(req, "cursor");
			if (bcursor && (!json_is_integer(bcursor) || json_integer_value(bcursor) < 0)) {
				error = rl_error_set(RL_EPROTO, "bad BYE");
				break;
			}
			if (bcursor)            /* recorded below, the buffers freed */
				bye_cursor = json_integer_value(bcursor);
			break;
		} else {
			error = rl_error_set(RL_EPROTO, "unexpected frame '%c'", type);
			break;
		}
		if (error < 0)
			break;
	}
	/* Every failure but a closed connection is answered and logged: a
	 * device must learn why, and the admin must see it. */
	if (error < 0 && error != RL_ECLOSED) {
		if (error != RL_ETIMEOUT && !answered)   /* one ERROR per request */
			rl_wire_error(c, error_code(error), rl_error_message(), 2000);
		fprintf(stderr, "relasi-hub: device %.12s from %s: %s\n", cn, addr, rl_error_message());
	}
	json_decref(req);
	json_decref(resp);
	free(resp_text);
	free(frame);
	rl_push_free(&push);
	/* Before the session's line, so that the line means "recorded". Its
	 * page cache given back first: when a crowd of devices ends its
	 * sessions together, each waits here for the write lock (measured:
	 * 200 devices at once, the hub's peak 131 -> 151-156 MiB without it). */
	if (bye_cursor >= 0) {
		sqlite3_db_release_memory(rl_store_db(s));
		note_seen(srv, s, &peer, bye_cursor);
	}
	if (st.pushed > 0)
		__atomic_add_fetch(&srv->pushers_done, 1, __ATOMIC_RELAXED);
	rl_conn_counters(c, &in, &out);
	fprintf(stderr, "relasi-hub: sync device=%.12s user=%.12s pushed=%ld applied=%ld same=%ld "
		"merged=%ld conflicts=%ld refused=%ld pulled=%ld bytes_in=%llu bytes_out=%llu ms=%lld\n",
		cn, peer.user, st.pushed, st.applied, st.same, st.merged, st.conflicts, st.refused,
		st.pulled, in, out, now_ms() - t0);
}

static void *connection_main(void *arg)
{
	struct conn_job *job = arg;
	struct server *srv = job->srv;
	rl_store *s = NULL;
	rl_conn *c = NULL;
	char cn[128], fp[RL_FINGERPRINT_BUFSZ];
	long long left;

	thread_store = &s;
	store_failed[0] = '\0';
	left = srv->preauth_ms - (now_ms() - job->accepted_ms);
	if (rl_tls_server_handshake(srv->tls, job->fd, left > 0 ? (int)left : 1, &c, cn, sizeof(cn),
				    fp) < 0) {
		preauth_leave(srv, job);
		if (job->dropped)
			fprintf(stderr, "relasi-hub: refused %s: dropped before its handshake ended, to "
				"make room (%d unauthenticated connections from its address)\n",
				job->addr, job->dropped);
		else if (store_failed[0])     /* the device's certificate was not at fault */
			fprintf(stderr, "relasi-hub: refused %s: %s\n", job->addr, store_failed);
		else
			fprintf(stderr, "relasi-hub: refused %s: %s\n", job->addr, rl_error_message());
		goto done;
	}
	if (connection_store(srv, &s) < 0) {
		fprintf(stderr, "relasi-hub: %s\n", store_failed);
		goto done;
	}
	if (!cn[0]) {
		serve_enrolment(srv, s, c, job->addr, job->accepted_ms);
	} else {
		preauth_leave(srv, job);    /* a device, authenticated: it keeps its slot */
		serve_device(srv, s, c, cn, fp, job->addr);
	}
done:
	thread_store = NULL;
	rl_conn_close(c);
	rl_store_close(s);
	__atomic_store_n(&srv->last_active_ms, now_ms(), __ATOMIC_RELAXED);
	pthread_mutex_lock(&srv->lock);
	if (job->in_preauth)
		preauth_unlink(srv, job);
	if (job->dropped)
		srv->dropping--;
	srv->active--;
	pthread_cond_signal(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	free(job);
	return NULL;
}

static int parse_listen(const char *spec, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (!end || end[1] != ':')
			return rl_error_set(RL_EINVALID, "--listen '%s': use [ADDR]:PORT for IPv6", spec);
		snprintf(host, hostsz, "%.*s", (int)(end - spec - 1), spec + 1);
		snprintf(port, portsz, "%s", end + 2);
	} else {
		if (!(colon = strrchr(spec, ':')))
			return rl_error_set(RL_EINVALID, "--listen '%s': use ADDR:PORT", spec);
		snprintf(host, hostsz, "%.*s", (int)(colon - spec), spec);
		snprintf(port, portsz, "%s", colon + 1);
	}
	return RL_OK;
}

static int open_listener(const char *spec, int *out, char *actual, size_t actualsz)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16], h[64], p[16];
	int fd = -1, one = 1, rc;

	if ((rc = parse_listen(spec, host, sizeof(host), port, sizeof(port))) < 0)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0)
		return rl_error_set(RL_EINVALID, "--listen '%s': %s", spec, gai_strerror(rc));
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 256) < 0) {
		rc = rl_error_set(RL_EIO, "cannot listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(actual, actualsz, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
	*out = fd;
	return RL_OK;
}

/* Descriptors a connection holds: its socket and its store handle's
 * database and WAL files (4 with SQLite's own), and a pre-authentication
 * guard (one more). With the threads of dropped connections not yet ended
 * (at most max_preauth more), the audit writer, the checkpointer, the image
 * builder and the listener (FD_RESERVE), a full hub needs
 * (max_conn + max_preauth) * 4 + max_preauth + FD_RESERVE. */
#define FD_PER_CONN 4
#define FD_RESERVE  96

/* Raise the soft descriptor limit towards what a full hub needs (a default
 * of 1024 is below it), as Redis does; where the hard limit is lower, serve
 * fewer connections at once, so that a flood of unauthenticated ones cannot
 * take the last descriptors a device's session needs (it would fail to open
 * the store and be refused, however the admission made room). */
static void fit_fd_limit(struct server *srv)
{
	const long need_per = 3 * FD_PER_CONN / 2 + 1;   /* a connection, half a pre-auth one */
	long want = (long)RL_MAX_CONNECTIONS * need_per + FD_RESERVE, have;
	struct rlimit rl;

	srv->max_conn = RL_MAX_CONNECTIONS;
	srv->max_preauth = RL_MAX_PREAUTH;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want
			      ? rl.rlim_max : (rlim_t)want;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	have = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)want ? want : (long)rl.rlim_cur;
	if (have >= want)
		return;
	srv->max_conn = (int)((have - FD_RESERVE) / need_per);
	if (srv->max_conn < 8)
		srv->max_conn = 8;
	srv->max_preauth = srv->max_conn / 2;
	fprintf(stderr, "relasi-hub: only %ld file descriptors (%ld wanted): serving at most %d "
		"connections, %d of them unauthenticated; raise the hard limit (ulimit -Hn) for "
		"%d\n", have, want, srv->max_conn, srv->max_preauth, RL_MAX_CONNECTIONS);
}

int hub_serve(const char *dir, const char *listen_spec, const char *name, int timeout_s,
	      long pack_loose, int pack_packs, long image_min)
{
	struct server srv;
	char cert[4096], key[4096], ca[4096], actual[96];
	const char *fault = getenv("RELASI_HUB_FAULT");
	struct sigaction sa;
	int lfd = -1, error;

	memset(&srv, 0, sizeof(srv));
	srv.dir = dir;
	srv.name = name;
	srv.read_ms = timeout_s > 0 ? timeout_s * 1000 : RL_READ_TIMEOUT_MS;
	srv.pack_loose = pack_loose;
	srv.pack_packs = pack_packs;
	srv.image_min = image_min;
	srv.last_active_ms = now_ms(); /* a hub just started waits to be quiet too */
	/* Before authentication a peer gets less patience, never more. */
	srv.preauth_ms = srv.read_ms < RL_PREAUTH_TIMEOUT_MS ? srv.read_ms : RL_PREAUTH_TIMEOUT_MS;
	pthread_mutex_init(&srv.lock, NULL);
	pthread_mutex_init(&srv.write_lock, NULL);
	pthread_cond_init(&srv.idle, NULL);
	if (hub_cond_init_monotonic(&srv.image_wake) != 0) {
		/* devices still get the snapshot record by record */
		fprintf(stderr, "relasi-hub: cannot start the snapshot image builder\n");
		srv.image_min = 0;
	}
	pthread_mutex_init(&srv.audit_lock, NULL);
	pthread_cond_init(&srv.audit_wake, NULL);
	{
		const char *audit = getenv("RELASI_HUB_AUDIT");
		srv.audit_on = !(audit && strcmp(audit, "off") == 0);
	}
	if (fault && strncmp(fault, "ack-lost:", 9) == 0) {
		srv.fault_kind = 1;
		srv.fault_at = strtol(fault + 9, NULL, 10);
	} else if (fault && strncmp(fault, "kill-after-commit:", 18) == 0) {
		srv.fault_kind = 2;
		srv.fault_at = strtol(fault + 18, NULL, 10);
	} else if (fault && strncmp(fault, "snapshot-cut:", 13) == 0) {
		srv.fault_kind = 3;
		srv.fault_at = strtol(fault + 13, NULL, 10);
	} else if (fault && strcmp(fault, "no-snapshot") == 0) {
		srv.fault_kind = 5;
	} else if (fault && strncmp(fault, "snapshot-pause:", 15) == 0) {
		srv.fault_kind = 4;
		srv.fault_at = strtol(fault + 15, NULL, 10);
	} else if (fault && strncmp(fault, "image-cut:", 10) == 0) {
		srv.fault_kind = 6;
		srv.fault_at = strtol(fault + 10, NULL, 10);
	}
	if ((error = hub_path(cert, sizeof(cert), dir, HUB_SERVER_CRT)) < 0 ||
	    (error = hub_path(key, sizeof(key), dir, HUB_SERVER_KEY)) < 0 ||
	    (error = hub_path(ca, sizeof(ca), dir, HUB_DEVICE_CA)) < 0 ||
	    (error = rl_tls_server_new(&srv.tls, cert, key, ca, peer_check, &srv)) < 0 ||
	    (error = open_listener(listen_spec, &lfd, actual, sizeof(actual))) < 0)
		goto cleanup;

	/* Where this run's history starts: a copy put back in place of the
	 * directory ends there (hub_epoch_check_device). */
	{
		rl_store *s = NULL;
		if ((error = hub_store_open(&s, dir, 0)) == 0)
			error = hub_epoch_note_start(s);
		rl_store_close(s);
		if (error < 0)
			goto cleanup;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fit_fd_limit(&srv);
	/* Before the audit writer, which hands it its connection. */
	if (hub_checkpointer_start(&srv.checkpointer, dir) < 0)
		fprintf(stderr, "relasi-hub: %s; each push checkpoints the WAL itself\n",
			rl_error_message());
	/* The writer starts by catching up on what a crash left behind. */
	if (srv.audit_on && pthread_create(&srv.audit_thread, NULL, audit_main, &srv) != 0) {
		error = rl_error_set(RL_ERROR, "cannot start the audit writer");
		hub_checkpointer_stop(srv.checkpointer);
		srv.checkpointer = NULL;
		goto cleanup;
	}
	if (srv.image_min > 0) {
		srv.image_on = pthread_create(&srv.image_thread, NULL, image_main, &srv) == 0;
		if (!srv.image_on)   /* devices still get the snapshot record by record */
			fprintf(stderr, "relasi-hub: cannot start the snapshot image builder\n");
	}
	if (!srv.audit_on)
		fprintf(stderr, "relasi-hub: RELASI_HUB_AUDIT=off: the audit history is not written "
			"while serving\n");
	printf("relasi-hub listening on %s\n", actual);
	fflush(stdout);

	/* A hub serves for months: the certificate check of serve's start
	 * (hub/main.c) is made again once a day, so that an expiry near is
	 * in the log while there is time to renew. */
	long long cert_checked_at = now_ms();
	while (!stop_requested) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		struct conn_job *job;
		pthread_t th;
		pthread_attr_t attr;
		int fd;

		if (now_ms() - cert_checked_at >= CERT_CHECK_MS) {
			cert_checked_at = now_ms();
			hub_cert_warn(dir, (int64_t)time(NULL));
		}
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
		if (fd < 0) {
			/* Out of descriptors: the connection stays in the backlog
			 * and the listener still readable; wait for sessions to end
			 * rather than spin on it. */
			if (errno == EMFILE || errno == ENFILE)
				poll(NULL, 0, 100);
			continue;
		}
		if (!(job = calloc(1, sizeof(*job)))) {
			close(fd);
			continue;
		}
		job->srv = &srv;
		job->fd = fd;
		job->guard_fd = -1;
		job->accepted_ms = now_ms();
		source_of(&peer, job->source);
		getnameinfo((struct sockaddr *)&peer, pl, job->addr, sizeof(job->addr), NULL, 0,
			    NI_NUMERICHOST);
		pthread_mutex_lock(&srv.lock);
		if (admit(&srv, job) < 0) {
			pthread_mutex_unlock(&srv.lock);
			close(fd);      /* every slot is an authenticated session: retry later */
			free(job);
			continue;
		}
		pthread_mutex_unlock(&srv.lock);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 512 * 1024);
		if (pthread_create(&th, &attr, connection_main, job) != 0) {
			pthread_mutex_lock(&srv.lock);
			if (job->in_preauth)
				preauth_unlink(&srv, job);
			srv.active--;
			pthread_mutex_unlock(&srv.lock);
			close(fd);
			free(job);
		}
		pthread_attr_destroy(&attr);
	}
	fprintf(stderr, "relasi-hub: stopping\n");
	/* Let sessions in flight finish (each is bounded by its timeouts). */
	pthread_mutex_lock(&srv.lock);
	{
		struct timespec until = hub_clock_in(CLOCK_REALTIME, srv.read_ms + 5000LL);
		while (srv.active > 0 &&
		       pthread_cond_timedwait(&srv.idle, &srv.lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&srv.lock);
	if (srv.image_on) {
		pthread_mutex_lock(&srv.lock);
		__atomic_store_n(&srv.image_stop, 1, __ATOMIC_RELAXED);  /* stops a build too */
		pthread_cond_signal(&srv.image_wake);
		pthread_mutex_unlock(&srv.lock);
		pthread_join(srv.image_thread, NULL);
		srv.image_on = 0;
	}
	if (srv.audit_on) {
		pthread_mutex_lock(&srv.audit_lock);
		__atomic_store_n(&srv.audit_stop, 1, __ATOMIC_RELAXED);  /* read by packing, unlocked */
		srv.audit_pending = 1;
		pthread_cond_signal(&srv.audit_wake);
		pthread_mutex_unlock(&srv.audit_lock);
		pthread_join(srv.audit_thread, NULL);
	}
	/* After the audit writer, whose last round commits too. A session
	 * still running could commit and wake it: then the checkpointer is
	 * left to the process's end, moments away. */
	pthread_mutex_lock(&srv.lock);
	if (srv.active == 0) {
		hub_checkpointer_stop(srv.checkpointer);
		srv.checkpointer = NULL;
	}
	pthread_mutex_unlock(&srv.lock);
cleanup:
	if (lfd >= 0)
		close(lfd);
	rl_tls_server_free(srv.tls);
	return error;
}
