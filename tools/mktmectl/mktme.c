// SPDX-License-Identifier: GPL-2.0
/* libmktme: see mktme.h */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mktme.h"

static int read_uint(const char *dir, const char *name, unsigned int *v)
{
	char path[512];
	FILE *f;
	int ok;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	ok = fscanf(f, "%u", v) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

int mktme_platform_read(const char *dir, struct mktme_platform *p)
{
	char path[512];
	FILE *f;
	int ret;

	memset(p, 0, sizeof(*p));
	if ((ret = read_uint(dir, "keyid_bits", &p->keyid_bits)) ||
	    (ret = read_uint(dir, "keyids_total", &p->keyids_total)) ||
	    (ret = read_uint(dir, "keyids_in_use", &p->keyids_in_use)))
		return ret;
	if (snprintf(path, sizeof(path), "%s/algorithms", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(p->algorithms, sizeof(p->algorithms), f))
		p->algorithms[0] = 0;
	fclose(f);
	p->algorithms[strcspn(p->algorithms, "\n")] = 0;
	return 0;
}

int mktme_parse_proc_keys_line(const char *line, struct mktme_key_info *k)
{
	char flags[16], timeout[16], type[16], perm[16];
	int usage, uid, gid, desc_at = -1;
	const char *desc, *colon, *p;
	size_t len;

	memset(k, 0, sizeof(*k));
	k->keyid = -1;
	k->users = -1;
	if (sscanf(line, "%x %15s %d %15s %15s %d %d %15s %n", &k->serial,
		   flags, &usage, timeout, perm, &uid, &gid, type,
		   &desc_at) < 8 || desc_at < 0)
		return -EINVAL;
	if (strcmp(type, "mktme"))
		return 0;
	k->revoked = strchr(flags, 'R') != NULL;
	desc = line + desc_at;
	/*
	 * "NAME: keyid=N type=T algorithm=A users=U [revoked]", or once a
	 * revoked key's KeyID is released "NAME: keyid=released type=T
	 * algorithm=A"
	 */
	colon = strstr(desc, ": keyid=");
	len = colon ? (size_t)(colon - desc) : strcspn(desc, "\n");
	if (len >= sizeof(k->description))
		len = sizeof(k->description) - 1;
	memcpy(k->description, desc, len);
	if (!colon)
		return 1;	/* not instantiated yet */
	if (!strncmp(colon, ": keyid=released ", strlen(": keyid=released "))) {
		k->released = true;
		if (sscanf(colon, ": keyid=released type=%15s algorithm=%15s",
			   k->type, k->algorithm) != 2)
			return -EINVAL;
		return 1;
	}
	if (sscanf(colon, ": keyid=%d type=%15s algorithm=%15s", &k->keyid,
		   k->type, k->algorithm) != 3)
		return -EINVAL;
	p = strstr(colon, " users=");
	if (p && sscanf(p, " users=%ld", &k->users) != 1)
		return -EINVAL;
	return 1;
}

int mktme_keys_read(const char *file, struct mktme_key_info **keys)
{
	struct mktme_key_info k, *v = NULL, *nv;
	char *line = NULL;
	size_t cap = 0;
	int n = 0, r;
	FILE *f = fopen(file, "re");

	*keys = NULL;
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		r = mktme_parse_proc_keys_line(line, &k);
		if (r < 0) {
			n = r;
			break;
		}
		if (!r)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			n = -ENOMEM;
			break;
		}
		v = nv;
		v[n++] = k;
	}
	free(line);
	fclose(f);
	if (n < 0)
		free(v);
	else
		*keys = v;
	return n;
}

static bool is_hex(const char *s, size_t digits)
{
	size_t i;

	if (!s || strlen(s) != digits)
		return false;
	for (i = 0; i < digits; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

int mktme_payload(char *buf, size_t len, const char *type,
		  const char *algorithm, const char *key_hex,
		  const char *tweak_hex, const char **why)
{
	size_t digits;
	int n;

	if (!type || (strcmp(type, "cpu") && strcmp(type, "user") &&
		      strcmp(type, "no-encrypt"))) {
		*why = "--type must be cpu, user or no-encrypt";
		return -EINVAL;
	}
	if (!algorithm || (strcmp(algorithm, "aes-xts-128") &&
			   strcmp(algorithm, "aes-xts-256"))) {
		*why = "--algorithm must be aes-xts-128 or aes-xts-256";
		return -EINVAL;
	}
	if (strcmp(type, "user")) {
		if (key_hex || tweak_hex) {
			*why = "only --type user takes a key file";
			return -EINVAL;
		}
		n = snprintf(buf, len, "type=%s algorithm=%s", type, algorithm);
	} else {
		digits = strcmp(algorithm, "aes-xts-256") ? 32 : 64;
		if (!is_hex(key_hex, digits) || !is_hex(tweak_hex, digits)) {
			*why = digits == 32 ?
			       "aes-xts-128 needs a 16-byte key and a 16-byte tweak, 32 hex digits each" :
			       "aes-xts-256 needs a 32-byte key and a 32-byte tweak, 64 hex digits each";
			return -EINVAL;
		}
		n = snprintf(buf, len, "type=user algorithm=%s key=%s tweak=%s",
			     algorithm, key_hex, tweak_hex);
	}
	if (n < 0 || (size_t)n >= len) {
		*why = "payload buffer too small";
		return -EINVAL;
	}
	return 0;
}

static json_object *algorithms_json(const char *list)
{
	json_object *a = json_object_new_array();
	char copy[64], *save, *t;

	snprintf(copy, sizeof(copy), "%s", list);
	for (t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		json_object_array_add(a, json_object_new_string(t));
	return a;
}

json_object *mktme_platform_json(const struct mktme_platform *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "keyid_bits", json_object_new_int(p->keyid_bits));
	json_object_object_add(o, "keyids_total", json_object_new_int(p->keyids_total));
	json_object_object_add(o, "keyids_in_use", json_object_new_int(p->keyids_in_use));
	json_object_object_add(o, "keyids_free",
			       json_object_new_int(p->keyids_total - p->keyids_in_use));
	json_object_object_add(o, "algorithms", algorithms_json(p->algorithms));
	return o;
}

const char *mktme_key_state(const struct mktme_key_info *k)
{
	return k->released ? "released" : k->revoked ? "revoked" : "active";
}

json_object *mktme_key_json(const struct mktme_key_info *k)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "serial", json_object_new_int64(k->serial));
	json_object_object_add(o, "description", json_object_new_string(k->description));
	json_object_object_add(o, "keyid", k->keyid >= 0 ?
			       json_object_new_int(k->keyid) : NULL);
	json_object_object_add(o, "type", k->type[0] ?
			       json_object_new_string(k->type) : NULL);
	json_object_object_add(o, "algorithm", k->algorithm[0] ?
			       json_object_new_string(k->algorithm) : NULL);
	json_object_object_add(o, "users", k->users >= 0 ?
			       json_object_new_int64(k->users) : NULL);
	json_object_object_add(o, "revoked", json_object_new_boolean(k->revoked));
	json_object_object_add(o, "state", json_object_new_string(mktme_key_state(k)));
	return o;
}

/* The value of the "mktme" line of DIR/FILE ("mktme N"); -1 if none */
static long misc_entry(const char *dir, const char *file)
{
	char path[512], name[64];
	long v, found = -1;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -1;
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (found < 0 && fscanf(f, "%63s %ld", name, &v) == 2)
		if (!strcmp(name, "mktme"))
			found = v;
	fclose(f);
	return found;
}

int mktme_misc_cgroup_read(const char *mounts, struct mktme_misc_cgroup *m)
{
	struct mntent *e;
	FILE *f;

	memset(m, 0, sizeof(*m));
	m->capacity = m->current = -1;
	f = setmntent(mounts, "re");
	if (!f)
		return -errno;
	while ((e = getmntent(f))) {
		char probe[512];

		if (!strcmp(e->mnt_type, "cgroup2")) {
			/* The misc files exist at the root once +misc is enabled */
			snprintf(probe, sizeof(probe), "%s/misc.capacity", e->mnt_dir);
			if (access(probe, R_OK))
				continue;
			m->version = 2;
		} else if (!strcmp(e->mnt_type, "cgroup") && hasmntopt(e, "misc")) {
			m->version = 1;
		} else {
			continue;
		}
		snprintf(m->path, sizeof(m->path), "%s", e->mnt_dir);
		m->capacity = misc_entry(e->mnt_dir, "misc.capacity");
		m->current = misc_entry(e->mnt_dir, "misc.current");
		break;
	}
	endmntent(f);
	return 0;
}

json_object *mktme_misc_cgroup_json(const struct mktme_misc_cgroup *m)
{
	json_object *o;

	if (!m->version)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(m->version));
	json_object_object_add(o, "path", json_object_new_string(m->path));
	json_object_object_add(o, "capacity", m->capacity >= 0 ?
			       json_object_new_int64(m->capacity) : NULL);
	json_object_object_add(o, "current", m->current >= 0 ?
			       json_object_new_int64(m->current) : NULL);
	return o;
}
