// SPDX-License-Identifier: GPL-2.0
/* The domains' keys: see hook_keys.h */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_keys.h"

key_serial_t keys_ring(const char *name, struct mkerr *e)
{
	key_serial_t ring;

	ring = keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", name, 0);
	if (ring > 0)
		return ring;
	if (errno != ENOKEY)
		return mkerr_set(e, "can't search root's user keyring for the %s "
				 "keyring: %s", name, strerror(errno));
	ring = add_key("keyring", name, NULL, 0, KEY_SPEC_USER_KEYRING);
	if (ring < 0)
		return mkerr_set(e, "can't create the %s keyring in root's user "
				 "keyring: %s", name, strerror(errno));
	return ring;
}

key_serial_t keys_find(key_serial_t ring, const char *type, const char *desc,
		       struct mkerr *e)
{
	key_serial_t k = keyctl_search(ring, type, desc, 0);

	if (k > 0)
		return k;
	if (errno == ENOKEY || errno == EKEYREVOKED || errno == EKEYEXPIRED)
		return 0;
	if (errno == ENODEV)	/* the key type is not registered */
		return 0;
	return mkerr_set(e, "can't search the keyring for %s key %s: %s",
			 type, desc, strerror(errno));
}

static const char *add_key_hint(int err)
{
	switch (err) {
	case ENODEV:
		return "this kernel has no TME-MK key type (the CPU or firmware "
		       "lacks TME-MK, or the kernel lacks CONFIG_X86_MKTME); run "
		       "the domain on a TME-MK host, or disable its encryption "
		       "(mktmectl domain disable DOMAIN)";
	case ENOKEY:
		return "every KeyID is in use (mktmectl status; mktmectl keys "
		       "shows who holds them): stop an encrypted domain, share a "
		       "key between a tenant's domains (key='NAME'), or raise the "
		       "misc cgroup's mktme limit";
	case EDQUOT:
		return "root's key quota is full (/proc/sys/kernel/keys/root_maxkeys)";
	case EACCES:
	case EPERM:
		return "permission denied (the hook needs CAP_SYS_RESOURCE)";
	case EINVAL:
		return "the kernel refused the key's type or algorithm (mktmectl "
		       "status lists the algorithms firmware allows)";
	default:
		return strerror(err);
	}
}

key_serial_t keys_create(key_serial_t ring, const char *type, const char *desc,
			 const char *payload, gid_t group, struct mkerr *e)
{
	key_serial_t k;
	int err;

	k = add_key(type, desc, payload, strlen(payload), ring);
	if (k < 0) {
		err = errno;
		mkerr_set(e, "can't create %s key %s: %s", type, desc,
			  add_key_hint(err));
		errno = err;	/* for callers that say more (ENOKEY) */
		return -1;
	}
	if (keyctl_chown(k, (uid_t)-1, group) < 0 ||
	    keyctl_setperm(k, HOOK_KEY_PERM) < 0) {
		err = errno;
		keyctl_revoke(k);
		keyctl_unlink(k, ring);
		return mkerr_set(e, "can't give key %s to group %u: %s", desc,
				 (unsigned)group, strerror(err));
	}
	return k;
}

int keys_share(key_serial_t serial, gid_t group, struct mkerr *e)
{
	if (keyctl_chown(serial, (uid_t)-1, group) < 0 ||
	    keyctl_setperm(serial, HOOK_KEY_PERM) < 0)
		return mkerr_set(e, "can't give key %d to group %u: %s", serial,
				 (unsigned)group, strerror(errno));
	return 0;
}

int keys_revoke(key_serial_t ring, key_serial_t serial, struct mkerr *e)
{
	if (keyctl_revoke(serial) < 0 && errno != ENOKEY && errno != EKEYREVOKED &&
	    errno != EKEYEXPIRED)
		return mkerr_set(e, "can't revoke key %d: %s", serial, strerror(errno));
	if (keyctl_unlink(serial, ring) < 0 && errno != ENOENT && errno != ENOKEY &&
	    errno != EKEYREVOKED)
		return mkerr_set(e, "can't unlink key %d: %s", serial, strerror(errno));
	return 0;
}

int keys_is(key_serial_t serial, const char *type, const char *desc)
{
	char *d = NULL, *semi;
	int ret;

	/* "type;uid;gid;perm;description" */
	if (keyctl_describe_alloc(serial, &d) < 0)
		return (errno == ENOKEY || errno == EKEYREVOKED ||
			errno == EKEYEXPIRED) ? 0 : -1;
	semi = strchr(d, ';');
	ret = semi && (size_t)(semi - d) == strlen(type) &&
	      !strncmp(d, type, semi - d);
	if (ret) {
		int i;

		for (i = 0; i < 3 && semi; i++)
			semi = strchr(semi + 1, ';');
		ret = semi && !strcmp(semi + 1, desc);
	}
	free(d);
	return ret;
}
