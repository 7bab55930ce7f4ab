// SPDX-License-Identifier: GPL-2.0
/* Paths and names: see hook_config.h */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hook_config.h"

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && v[0] ? v : def;
}

/* The real QEMU from the config file; the default when there is none */
static int read_config(struct hook_config *c, struct mkerr *e)
{
	json_object *root, *q;

	snprintf(c->qemu, sizeof(c->qemu), "/usr/bin/qemu-system-x86_64");
	root = json_object_from_file(c->config_file);
	if (!root) {
		FILE *f = fopen(c->config_file, "re");

		if (!f && errno == ENOENT)
			return 0;
		if (f)
			fclose(f);
		return mkerr_set(e, "%s is not valid JSON (%s); it should be "
				 "{\"qemu\": \"/path/to/qemu-system-x86_64\"}",
				 c->config_file, json_util_get_last_err());
	}
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "qemu", &q) ||
	    !json_object_is_type(q, json_type_string) ||
	    json_object_get_string(q)[0] != '/' ||
	    strlen(json_object_get_string(q)) >= sizeof(c->qemu)) {
		json_object_put(root);
		return mkerr_set(e, "%s must be {\"qemu\": \"/absolute/path/to/"
				 "qemu-system-x86_64\"}", c->config_file);
	}
	strcpy(c->qemu, json_object_get_string(q));
	json_object_put(root);
	return 0;
}

int hook_config_load(struct hook_config *c, struct mkerr *e)
{
	struct group *g;

	memset(c, 0, sizeof(*c));
	c->state_dir = env_or("MKTME_KVM_STATE_DIR", "/run/mktme-kvm");
	c->schema = env_or("MKTME_KVM_SCHEMA",
			   "/usr/share/mktme-kvm/domain-encryption.rng");
	c->wrapper = env_or("MKTME_KVM_WRAPPER",
			    "/usr/libexec/mktme-kvm/qemu-system-x86_64");
	c->config_file = env_or("MKTME_KVM_CONFIG", "/etc/mktme-kvm/wrapper.json");
	c->key_type = env_or("MKTME_KVM_KEY_TYPE", "mktme");
	c->keyring = env_or("MKTME_KVM_KEYRING", "mktme-kvm");
	c->qemu_group_name = env_or("MKTME_KVM_QEMU_GROUP", "libvirt-qemu");
	errno = 0;
	g = getgrnam(c->qemu_group_name);
	if (!g)
		return mkerr_set(e, "no group %s (QEMU's group, which may use the "
				 "domains' keys): is libvirt-daemon-system installed?",
				 c->qemu_group_name);
	c->qemu_group = g->gr_gid;
	return read_config(c, e);
}
