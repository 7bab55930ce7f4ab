/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libmktme (inside mktmectl): the platform and keys as the kernel shows
 * them (/sys/kernel/mm/mktme, /proc/keys), and payloads for add_key().
 */
#ifndef MKTME_H
#define MKTME_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#define MKTME_SYSFS		"/sys/kernel/mm/mktme"
#define MKTME_PROC_KEYS		"/proc/keys"
#define MKTME_PAYLOAD_MAX	256
#define MKTME_MOUNTS		"/proc/self/mounts"

struct mktme_platform {
	unsigned int keyid_bits;
	unsigned int keyids_total;
	unsigned int keyids_in_use;
	char algorithms[64];	/* space-separated, as in sysfs */
};

struct mktme_key_info {
	unsigned int serial;
	bool revoked;
	char description[128];
	int keyid;
	char type[16];
	char algorithm[16];
	long users;		/* references on the KeyID; -1 once released */
	bool released;		/* revoked, and its KeyID released */
};

/* Read DIR (normally MKTME_SYSFS); 0 or -errno (-ENOENT: no TME-MK) */
int mktme_platform_read(const char *dir, struct mktme_platform *p);

/*
 * One /proc/keys line: 1 and *k filled for an "mktme" key, 0 for a key
 * of another type, -EINVAL for a line that cannot be parsed.
 */
int mktme_parse_proc_keys_line(const char *line, struct mktme_key_info *k);

/* All mktme keys of FILE (normally MKTME_PROC_KEYS); count or -errno */
int mktme_keys_read(const char *file, struct mktme_key_info **keys);

/*
 * The add_key() payload for TYPE and ALGORITHM (and, for type "user",
 * the data and tweak keys in hex) into buf; 0, or -EINVAL with *why set
 * to a message naming the problem.
 */
int mktme_payload(char *buf, size_t len, const char *type,
		  const char *algorithm, const char *key_hex,
		  const char *tweak_hex, const char **why);

/*
 * The misc cgroup's "mktme" resource at the root of the hierarchy that
 * has the misc controller: on cgroup v2 (misc.capacity and misc.current
 * at the root appear once +misc is in the root's cgroup.subtree_control)
 * or v1 (the "misc" hierarchy).  What schedulers read (Kubernetes node
 * feature discovery, Nova): capacity and current usage.
 */
struct mktme_misc_cgroup {
	int version;		/* 1 or 2; 0: no misc controller mounted */
	char path[256];		/* its mount point */
	long capacity;		/* -1: no "mktme" entry (kernel without it) */
	long current;
};

/* From MOUNTS (normally MKTME_MOUNTS); 0 (version 0 when there is none),
 * or -errno when MOUNTS cannot be read */
int mktme_misc_cgroup_read(const char *mounts, struct mktme_misc_cgroup *m);
/* null when version is 0 */
json_object *mktme_misc_cgroup_json(const struct mktme_misc_cgroup *m);

json_object *mktme_platform_json(const struct mktme_platform *p);
/* "active", "revoked" (its KeyID still in use) or "released" */
const char *mktme_key_state(const struct mktme_key_info *k);
json_object *mktme_key_json(const struct mktme_key_info *k);

#endif
