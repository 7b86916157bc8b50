/*
 * relasi/policy.h — who may change what: the one role rule (docs/hub.md,
 * "Roles"), applied by the hub to every pushed change and by an enrolled
 * device to every change a command is about to make, so that the device
 * refuses at once what its hub would refuse at the next sync.
 *
 * The hub's answer is the authority (a role can change while a device is
 * offline, an owner can be reassigned); the device's check only spares the
 * rep a change that would come back refused.
 */
#ifndef RELASI_POLICY_H
#define RELASI_POLICY_H

#include "relasi/merge.h"   /* struct rl_value */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * NULL when `role` (rep, manager, marketing, admin) acting as user id `user`
 * may write value v to field of a row of table tbl, else the reason (a
 * static string). creating: the row is new (the hub does not have it);
 * owner: the row's current owner_id (else user_id), "" for a new row.
 * An unknown role is allowed only what a rep is.
 */
const char *rl_policy_refusal(const char *role, const char *user, const char *tbl,
			      int creating, const char *owner, const char *field,
			      const struct rl_value *v);

#ifdef __cplusplus
}
#endif
#endif
