/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The domains' keys in the kernel's key retention service (libkeyutils).
 *
 * Layout: one keyring, "mktme-kvm", linked into root's user keyring (so
 * it outlives every hook run and libvirtd restarts); in it each domain's
 * key "mktme-kvm:<uuid>" and the shared keys by the names domains give
 * them.  Keys belong to root; their group is QEMU's (libvirt-qemu), which
 * gets view and search only: what QEMU needs to use the key by serial
 * (memory-backend-mktme key=SERIAL); it can neither read, link, change
 * nor revoke it.  Possessors (root, through the keyring) have every right.
 *
 * The key type is a parameter so that the unit tests can exercise the
 * same code with the kernel's "user" keys on a host without TME-MK.
 */
#ifndef HOOK_KEYS_H
#define HOOK_KEYS_H

#include <keyutils.h>
#include <sys/types.h>

#include "mkerr.h"

#define HOOK_KEYRING		"mktme-kvm"
#define HOOK_KEY_PREFIX		"mktme-kvm:"	/* + domain UUID */

/*
 * Permissions of a domain key: possessor all, owner view, group (QEMU's)
 * view, read and search.  Using an mktme key (encrypt_mprotect(), a KVM
 * binding) needs read; search lets QEMU find it by description.
 */
#define HOOK_KEY_PERM	(KEY_POS_ALL | KEY_USR_VIEW | KEY_GRP_VIEW | \
			 KEY_GRP_READ | KEY_GRP_SEARCH)

/* The mktme-kvm keyring in root's user keyring, created if missing */
key_serial_t keys_ring(const char *name, struct mkerr *e);

/* The key TYPE/DESC linked in RING: serial, 0 if there is none, -1 on error */
key_serial_t keys_find(key_serial_t ring, const char *type, const char *desc,
		       struct mkerr *e);

/*
 * Add the key TYPE/DESC with PAYLOAD to RING, give it to GROUP with
 * HOOK_KEY_PERM.  On any failure nothing is left behind.  The error names
 * ENODEV (no TME-MK), ENOKEY (no KeyID free), EACCES, EINVAL; errno is
 * add_key()'s when it was add_key() that failed.
 */
key_serial_t keys_create(key_serial_t ring, const char *type, const char *desc,
			 const char *payload, gid_t group, struct mkerr *e);

/* Give SERIAL (an operator's key) to GROUP with HOOK_KEY_PERM */
int keys_share(key_serial_t serial, gid_t group, struct mkerr *e);

/* Revoke SERIAL and unlink it from RING; an already gone key is fine */
int keys_revoke(key_serial_t ring, key_serial_t serial, struct mkerr *e);

/* 1 if SERIAL is a live key of TYPE named DESC, 0 if not, -1 on error */
int keys_is(key_serial_t serial, const char *type, const char *desc);

#endif
