/*
 * cert.c — the hub's certificates over time (`relasi-hub cert`, `cert
 * renew`, and serve's warning at start).
 *
 * `init` makes two CAs valid ten years and a server certificate valid 825
 * days. Devices pin the server CA (the fingerprint in their token), not
 * the server certificate: a new server certificate from the same CA, for
 * the same key and names, is taken by every device without enrolling
 * again. Without one, every sync fails once the certificate expires.
 */
#include "cert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "backup.h"
#include "hub.h"
#include "relasi/error.h"
#include "relasi/valid.h"

json_t *hub_cert_json(const char *what, const struct rl_pki_cert_info *c, int64_t now)
{
	char from[21], until[21];
	json_t *names = json_array();
	size_t i;

	rl_time_format_utc(from, c->not_before);
	rl_time_format_utc(until, c->not_after);
	for (i = 0; names && i < c->nsans; i++)
		json_array_append_new(names, json_string(c->sans[i]));
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:o?}", "certificate", what, "subject", c->cn,
			 "valid_from", from, "valid_until", until,
			 "days_left", (json_int_t)((c->not_after - now) / 86400),
			 "expired", c->not_after <= now, "names", names);
}

int hub_cert_read(const char *dir, struct hub_certs *out)
{
	char path[4096];
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = hub_path(path, sizeof(path), dir, HUB_SERVER_CRT)) < 0 ||
	    (error = rl_pki_cert_info_file(path, &out->server)) < 0 ||
	    (error = hub_path(path, sizeof(path), dir, HUB_SERVER_CA)) < 0 ||
	    (error = rl_pki_cert_info_file(path, &out->server_ca)) < 0 ||
	    (error = hub_path(path, sizeof(path), dir, HUB_DEVICE_CA)) < 0 ||
	    (error = rl_pki_cert_info_file(path, &out->device_ca)) < 0)
		return error;
	return RL_OK;
}

int hub_cert_renew(const char *dir, const char *const *hosts, size_t nhosts, int days,
		   int64_t now, struct rl_pki_cert_info *out)
{
	char key[4096], crt[4096], cakey[4096], cacrt[4096], *csr = NULL, *cert = NULL;
	const char *names[RL_PKI_SANS_MAX];
	struct rl_pki_cert_info cur;
	struct rl_pki_sign_opts o;
	unsigned char serial[8];
	size_t i;
	int error;

	if (days < 1 || days > HUB_CERT_DAYS_MAX)
		return rl_error_set(RL_EINVALID, "--days %d: give 1 to %d", days, HUB_CERT_DAYS_MAX);
	if (nhosts > RL_PKI_SANS_MAX)
		return rl_error_set(RL_EINVALID, "--host: at most %d names", RL_PKI_SANS_MAX);
	if ((error = hub_path(key, sizeof(key), dir, HUB_SERVER_KEY)) < 0 ||
	    (error = hub_path(crt, sizeof(crt), dir, HUB_SERVER_CRT)) < 0 ||
	    (error = hub_path(cakey, sizeof(cakey), dir, HUB_SERVER_CAKEY)) < 0 ||
	    (error = hub_path(cacrt, sizeof(cacrt), dir, HUB_SERVER_CA)) < 0 ||
	    (error = rl_pki_cert_info_file(crt, &cur)) < 0)
		return error;
	/* The names devices know the hub by stay, unless the admin gives new
	 * ones (the hub moved): the first is the subject, as init makes it. */
	if (nhosts == 0) {
		for (i = 0; i < cur.nsans; i++)
			names[i] = cur.sans[i];
		nhosts = cur.nsans;
		if (nhosts == 0 && cur.cn[0])
			names[nhosts++] = cur.cn;
		if (nhosts == 0)
			return rl_error_set(RL_EINVALID, "'%s' names no host: give --host", crt);
	} else {
		for (i = 0; i < nhosts; i++)
			names[i] = hosts[i];
	}
	if (getrandom(serial, sizeof(serial), 0) != (ssize_t)sizeof(serial))
		return rl_error_set(RL_ERROR, "getrandom failed");
	memset(&o, 0, sizeof(o));
	o.subject_cn = names[0];
	o.sans = names;
	o.nsans = nhosts;
	o.days = days;
	o.server = 1;
	memcpy(&o.serial, serial, sizeof(serial));
	o.serial = (o.serial >> 1) | 1;   /* positive, non-zero, unlike init's 1 */
	o.now = now;
	/* The same key: server.key is never rewritten, so a crash leaves the
	 * old certificate or the new one, each matching it. */
	if ((error = rl_pki_csr_create(key, "relasi-hub", &csr)) < 0 ||
	    (error = rl_pki_sign_csr(cakey, cacrt, csr, &o, &cert)) < 0 ||
	    (error = hub_write_atomic(crt, cert, strlen(cert), 0644)) < 0)
		goto cleanup;
	error = rl_pki_cert_info_file(crt, out);
cleanup:
	free(csr);
	free(cert);
	return error;
}

void hub_cert_warn(const char *dir, int64_t now)
{
	struct hub_certs c;
	char until[21];
	int64_t left, ca_end;

	if (hub_cert_read(dir, &c) < 0) {
		fprintf(stderr, "relasi-hub: warning: cannot read the hub's certificates: %s\n",
			rl_error_message());
		return;
	}
	rl_time_format_utc(until, c.server.not_after);
	left = (c.server.not_after - now) / 86400;
	if (c.server.not_after <= now)
		fprintf(stderr, "relasi-hub: the server certificate expired on %s: no device can "
			"sync; run 'relasi-hub cert renew' and start serve again\n", until);
	else if (left < HUB_CERT_WARN_DAYS)
		fprintf(stderr, "relasi-hub: warning: the server certificate expires on %s, in %lld "
			"day%s: run 'relasi-hub cert renew' and start serve again before then\n",
			until, (long long)left, left == 1 ? "" : "s");
	ca_end = c.server_ca.not_after < c.device_ca.not_after ? c.server_ca.not_after
		 : c.device_ca.not_after;
	rl_time_format_utc(until, ca_end);
	if (ca_end - now < HUB_CERT_WARN_DAYS * 86400LL)
		fprintf(stderr, "relasi-hub: warning: a CA of this hub expires on %s "
			"(relasi-hub cert): after it, devices must enrol with a new hub\n", until);
}
