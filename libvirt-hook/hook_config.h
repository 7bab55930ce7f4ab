/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where mktme-kvm's libvirt pieces live, shared by the hook, the QEMU
 * wrapper and mktmectl's domain verbs.  Defaults are the installed
 * paths; the environment overrides them (for the tests; libvirtd runs
 * hooks and QEMU with a clean environment):
 *
 *   MKTME_KVM_STATE_DIR   /run/mktme-kvm
 *   MKTME_KVM_SCHEMA      /usr/share/mktme-kvm/domain-encryption.rng
 *   MKTME_KVM_WRAPPER     /usr/libexec/mktme-kvm/qemu-system-x86_64
 *   MKTME_KVM_CONFIG      /etc/mktme-kvm/wrapper.json ({"qemu": PATH}:
 *                         the real QEMU, default /usr/bin/qemu-system-x86_64)
 *   MKTME_KVM_KEY_TYPE    mktme ("user" in the unit tests)
 *   MKTME_KVM_KEYRING     mktme-kvm
 *   MKTME_KVM_QEMU_GROUP  libvirt-qemu (QEMU's group: may use the keys)
 */
#ifndef HOOK_CONFIG_H
#define HOOK_CONFIG_H

#include <sys/types.h>

#include "mkerr.h"

struct hook_config {
	const char *state_dir;
	const char *schema;
	const char *wrapper;
	const char *config_file;
	const char *key_type;
	const char *keyring;
	const char *qemu_group_name;
	gid_t qemu_group;
	char qemu[4096];	/* the real QEMU */
};

/* Fill C; -1 with e set if the config file or the group is bad */
int hook_config_load(struct hook_config *c, struct mkerr *e);

#endif
