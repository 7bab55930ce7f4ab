/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hook's state: which key each domain it prepared uses, and which
 * keys it created (and so revokes when their last domain is released).
 * One JSON file (json-c), replaced atomically, read by the QEMU wrapper:
 *
 *   {"version": 1,
 *    "keys": [{"description": "mktme-kvm:<uuid>", "serial": 123,
 *              "type": "cpu", "algorithm": "aes-xts-256", "created": true}],
 *    "domains": [{"uuid": "...", "name": "vm1",
 *                 "key": "mktme-kvm:<uuid>", "phase": "prepared",
 *                 "daemon": "1234:98765"}]}
 *
 * A key's users are the domains naming it.  Writers hold state_lock().
 *
 * Crash safety: a key the hook is about to create is written first with
 * serial 0 ("pending"), and only then created; a hook killed in between
 * leaves a pending entry that the next run resolves by looking the key up
 * by name in the keyring (found: it is the hook's; not found: it was
 * never made).  So a key the hook created is always either in the state
 * or about to be revoked, never unknown.  "daemon" names the libvirtd
 * instance that prepared the domain (its PID and start time), so that a
 * later libvirtd can tell a start still in progress from a leftover.
 */
#ifndef HOOK_STATE_H
#define HOOK_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mkerr.h"

#define STATE_FILE	"state.json"
#define STATE_LOCK	"state.lock"
#define STATE_VERSION	1

struct state_key {
	char description[128];
	int32_t serial;		/* 0: pending (being created by a hook) */
	char type[16];
	char algorithm[16];
	bool created;		/* by the hook: revoked with its last user */
};

struct state_domain {
	char uuid[37];
	char name[256];
	char key[128];		/* description of its key */
	char phase[16];		/* "prepared", "started" */
	char daemon[32];	/* "PID:STARTTIME" of the libvirtd that ran
				 * prepare, or "" (older state files) */
};

struct state {
	struct state_key *keys;
	size_t nkeys;
	struct state_domain *domains;
	size_t ndomains;
};

/* Create DIR (mode 0750, group GROUP) if needed and take its lock; the fd */
int state_lock(const char *dir, gid_t group, struct mkerr *e);
void state_unlock(int fd);

/* Read DIR/state.json; a missing file is an empty state.  -1 with e set
 * (naming the file, the problem and the fix) when it is not valid. */
int state_load(const char *dir, struct state *s, struct mkerr *e);

/* Parse state JSON text (for state_load and the tests) */
int state_parse(const char *text, struct state *s, struct mkerr *e);

/* Write DIR/state.json atomically (temporary file, fsync, rename, fsync of
 * DIR), mode 0640, group GROUP (QEMU's, for the wrapper) */
int state_save(const char *dir, const struct state *s, gid_t group,
	       struct mkerr *e);

/* The JSON text of S (malloc'd), as state_save writes it */
char *state_format(const struct state *s);

void state_free(struct state *s);

struct state_domain *state_find_domain(struct state *s, const char *uuid);
struct state_key *state_find_key(struct state *s, const char *description);
/* Domains naming the key DESCRIPTION */
size_t state_key_users(const struct state *s, const char *description);

/* Add (copies) or remove entries; -1 only when out of memory */
int state_add_domain(struct state *s, const struct state_domain *d);
int state_add_key(struct state *s, const struct state_key *k);
void state_remove_domain(struct state *s, const char *uuid);
void state_remove_key(struct state *s, const char *description);

/*
 * One sentence naming the domains in S that hold a KeyID, by key (for the
 * error when every KeyID is in use), into buf: "KeyIDs held by encrypted
 * domains: vm1; vm2, vm3 (shared key tenant)", or a sentence saying none
 * of them is held by an encrypted domain.
 */
void state_holders_text(const struct state *s, char *buf, size_t len);

#endif
