// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of libvirt-hook/hook_keys.c against the kernel's key
 * retention service, with "user" keys standing in for "mktme" keys (this
 * host has no TME-MK): the keyring layout, permissions, revocation.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../libvirt-hook/hook_keys.h"

static char ring_name[64];
static key_serial_t ring;

static void make_ring(void)
{
	struct mkerr e;

	snprintf(ring_name, sizeof(ring_name), "mktme-kvm-test-%d", getpid());
	ring = keys_ring(ring_name, &e);
	cr_assert_gt(ring, 0, "%s", e.msg);
}

static void drop_ring(void)
{
	keyctl_clear(ring);
	keyctl_unlink(ring, KEY_SPEC_USER_KEYRING);
}

Test(keys, ring_is_found_again_in_roots_user_keyring, .init = make_ring, .fini = drop_ring)
{
	struct mkerr e;

	cr_expect_eq(keys_ring(ring_name, &e), ring);
	cr_expect_eq(keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", ring_name, 0), ring);
}

Test(keys, create_find_describe_revoke, .init = make_ring, .fini = drop_ring)
{
	key_serial_t k;
	struct mkerr e;
	char *d = NULL;
	unsigned perm;
	int uid, gid;

	k = keys_create(ring, "user", "mktme-kvm:u1", "type=cpu algorithm=aes-xts-128",
			4242, &e);
	cr_assert_gt(k, 0, "%s", e.msg);
	cr_expect_eq(keys_find(ring, "user", "mktme-kvm:u1", &e), k);
	cr_expect_eq(keys_find(ring, "user", "absent", &e), 0);
	cr_expect_eq(keys_is(k, "user", "mktme-kvm:u1"), 1);
	cr_expect_eq(keys_is(k, "user", "mktme-kvm:u2"), 0);
	cr_expect_eq(keys_is(k, "mktme", "mktme-kvm:u1"), 0);
	cr_assert_geq(keyctl_describe_alloc(k, &d), 0);
	cr_assert_eq(sscanf(strchr(d, ';') + 1, "%d;%d;%x", &uid, &gid, &perm), 3);
	cr_expect_eq(uid, 0, "owned by root");
	cr_expect_eq(gid, 4242, "QEMU's group");
	cr_expect_eq(perm, HOOK_KEY_PERM);
	cr_expect_eq(perm & 0x0000ff00,
		     KEY_GRP_VIEW | KEY_GRP_READ | KEY_GRP_SEARCH,
		     "QEMU's group may only view, read (use) and search");
	cr_expect_eq(perm & 0xff, 0, "others nothing");
	free(d);
	cr_expect_eq(keys_revoke(ring, k, &e), 0, "%s", e.msg);
	cr_expect_eq(keys_is(k, "user", "mktme-kvm:u1"), 0);
	cr_expect_eq(keys_find(ring, "user", "mktme-kvm:u1", &e), 0);
	cr_expect_eq(keys_revoke(ring, k, &e), 0, "revoking twice is fine: %s", e.msg);
}

Test(keys, share_an_operators_key, .init = make_ring, .fini = drop_ring)
{
	key_serial_t k = add_key("user", "tenant", "x", 1, ring);
	struct mkerr e;
	char *d = NULL;

	cr_assert_gt(k, 0);
	cr_expect_eq(keys_share(k, 4243, &e), 0, "%s", e.msg);
	cr_assert_geq(keyctl_describe_alloc(k, &d), 0);
	cr_expect(strstr(d, ";4243;"), "%s", d);
	free(d);
}

Test(keys, errors_name_cause_and_fix, .init = make_ring, .fini = drop_ring)
{
	struct mkerr e;

	/* A key type this kernel does not have: what a host without TME-MK says */
	cr_expect_eq(keys_create(ring, "mktme-absent-type", "d", "p", 0, &e), -1);
	cr_expect(strstr(e.msg, "no TME-MK"), "%s", e.msg);
	cr_expect(strstr(e.msg, "mktmectl domain disable"), "%s", e.msg);
	cr_expect_eq(keys_find(ring, "user", "nothing", &e), 0);
}
