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

json_object *mktme_platform_json(const struct mktme_platform *p);
/* "active", "revoked" (its KeyID still in use) or "released" */
const char *mktme_key_state(const struct mktme_key_info *k);
json_object *mktme_key_json(const struct mktme_key_info *k);

#endif
