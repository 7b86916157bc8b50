/*
 * cert.h — the hub's certificates over time (hub/cert.c): read what each
 * says of its validity, renew the server certificate from the same server
 * CA, and warn at serve's start when it is expired or about to be.
 */
#ifndef RELASI_HUB_CERT_H
#define RELASI_HUB_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "relasi/pki.h"

/* What `init` and `cert renew` give a server certificate, and the most
 * `--days` takes (the CAs live ten years). */
#define HUB_CERT_DAYS        825
#define HUB_CERT_DAYS_MAX    3650
/* serve warns when the server certificate or a CA has fewer days left. */
#define HUB_CERT_WARN_DAYS   30

struct hub_certs {
	struct rl_pki_cert_info server, server_ca, device_ca;
};

/* One certificate as `cert --json` and `status --json` show it: what,
 * subject, valid_from, valid_until, days_left (whole days from now,
 * seconds since the epoch), expired, names. A new reference; NULL only
 * when out of memory. */
json_t *hub_cert_json(const char *what, const struct rl_pki_cert_info *c, int64_t now);

/* The three certificates of hub directory dir. RL_EIO / RL_EINVALID naming
 * the file that cannot be read or parsed. */
int hub_cert_read(const char *dir, struct hub_certs *out);

/*
 * A new server certificate for the hub's own key (server.key, unchanged),
 * signed by its server CA, valid `days` days (1..HUB_CERT_DAYS_MAX) from
 * `now` (seconds since the epoch; 0: the clock's), for hosts (names or
 * IP literals; nhosts 0: the names of the current certificate). It
 * replaces server.crt atomically; *out describes it. serve reads it at
 * its start. RL_EINVALID for bad days or names, RL_EIO for files.
 */
int hub_cert_renew(const char *dir, const char *const *hosts, size_t nhosts, int days,
		   int64_t now, struct rl_pki_cert_info *out);

/* serve's start: one line on stderr when the server certificate has
 * expired or has fewer than HUB_CERT_WARN_DAYS left, or a CA has. */
void hub_cert_warn(const char *dir, int64_t now);

#endif
