// SPDX-License-Identifier: GPL-2.0
/* The hook's state: see hook_state.h */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "hook_keys.h"
#include "hook_state.h"

#define STATE_MAX_BYTES	(4 * 1024 * 1024)

int state_lock(const char *dir, gid_t group, struct mkerr *e)
{
	char path[4096];
	int fd;

	if (mkdir(dir, 0750) && errno != EEXIST)
		return mkerr_set(e, "can't create the state directory %s: %s",
				 dir, strerror(errno));
	/* The wrapper (QEMU's group) reads the state file in it */
	if (chown(dir, 0, group) && errno != EPERM)
		return mkerr_set(e, "can't give %s to group %u: %s", dir,
				 (unsigned)group, strerror(errno));
	if (snprintf(path, sizeof(path), "%s/" STATE_LOCK, dir) >= (int)sizeof(path))
		return mkerr_set(e, "state directory path too long: %s", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mkerr_set(e, "can't open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX)) {
		mkerr_set(e, "can't lock %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void state_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* drops the flock */
}

void state_free(struct state *s)
{
	free(s->keys);
	free(s->domains);
	memset(s, 0, sizeof(*s));
}

/* A string member NAME of O into buf (required, non-empty, fits) */
static int get_string(json_object *o, const char *name, char *buf, size_t len,
		      const char *where, struct mkerr *e)
{
	json_object *v;
	const char *str;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return mkerr_set(e, "%s has no string \"%s\"", where, name);
	str = json_object_get_string(v);
	if (!str[0] || strlen(str) >= len)
		return mkerr_set(e, "%s: \"%s\" is empty or longer than %zu bytes",
				 where, name, len - 1);
	strcpy(buf, str);
	return 0;
}

static int parse_key(json_object *o, struct state_key *k, size_t i,
		     struct mkerr *e)
{
	char where[32];
	json_object *v;
	int64_t serial;

	snprintf(where, sizeof(where), "keys[%zu]", i);
	if (!json_object_is_type(o, json_type_object))
		return mkerr_set(e, "%s is not an object", where);
	if (get_string(o, "description", k->description, sizeof(k->description), where, e) ||
	    get_string(o, "type", k->type, sizeof(k->type), where, e) ||
	    get_string(o, "algorithm", k->algorithm, sizeof(k->algorithm), where, e))
		return -1;
	if (!json_object_object_get_ex(o, "serial", &v) ||
	    !json_object_is_type(v, json_type_int))
		return mkerr_set(e, "%s has no integer \"serial\"", where);
	serial = json_object_get_int64(v);
	/* 0: a key a hook was about to create (see hook_state.h) */
	if (serial < 0 || serial > INT32_MAX)
		return mkerr_set(e, "%s: serial %lld is not a key serial", where,
				 (long long)serial);
	k->serial = (int32_t)serial;
	if (!json_object_object_get_ex(o, "created", &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return mkerr_set(e, "%s has no boolean \"created\"", where);
	k->created = json_object_get_boolean(v);
	return 0;
}

static int parse_domain(json_object *o, struct state_domain *d, size_t i,
			struct mkerr *e)
{
	char where[32];
	json_object *v;

	snprintf(where, sizeof(where), "domains[%zu]", i);
	if (!json_object_is_type(o, json_type_object))
		return mkerr_set(e, "%s is not an object", where);
	if (get_string(o, "uuid", d->uuid, sizeof(d->uuid), where, e) ||
	    get_string(o, "name", d->name, sizeof(d->name), where, e) ||
	    get_string(o, "key", d->key, sizeof(d->key), where, e) ||
	    get_string(o, "phase", d->phase, sizeof(d->phase), where, e))
		return -1;
	if (strcmp(d->phase, "prepared") && strcmp(d->phase, "started"))
		return mkerr_set(e, "%s: unknown phase \"%s\"", where, d->phase);
	/* Optional: state files written before it was recorded have none */
	if (json_object_object_get_ex(o, "daemon", &v) &&
	    get_string(o, "daemon", d->daemon, sizeof(d->daemon), where, e))
		return -1;
	return 0;
}

/* The array member NAME of ROOT, or an error */
static json_object *get_array(json_object *root, const char *name, struct mkerr *e)
{
	json_object *a;

	if (!json_object_object_get_ex(root, name, &a) ||
	    !json_object_is_type(a, json_type_array)) {
		mkerr_set(e, "no \"%s\" array", name);
		return NULL;
	}
	return a;
}

int state_parse(const char *text, struct state *s, struct mkerr *e)
{
	enum json_tokener_error jerr;
	json_object *root, *keys, *doms, *v;
	size_t i, n;

	memset(s, 0, sizeof(*s));
	root = json_tokener_parse_verbose(text, &jerr);
	if (!root)
		return mkerr_set(e, "not JSON (%s)", json_tokener_error_desc(jerr));
	if (!json_object_is_type(root, json_type_object)) {
		mkerr_set(e, "not a JSON object");
		goto bad;
	}
	if (!json_object_object_get_ex(root, "version", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != STATE_VERSION) {
		mkerr_set(e, "not version %d", STATE_VERSION);
		goto bad;
	}
	keys = get_array(root, "keys", e);
	doms = keys ? get_array(root, "domains", e) : NULL;
	if (!doms)
		goto bad;
	n = json_object_array_length(keys);
	s->keys = calloc(n ? n : 1, sizeof(*s->keys));
	n = json_object_array_length(doms);
	s->domains = calloc(n ? n : 1, sizeof(*s->domains));
	if (!s->keys || !s->domains) {
		mkerr_set(e, "out of memory");
		goto bad;
	}
	for (i = 0; i < json_object_array_length(keys); i++, s->nkeys++)
		if (parse_key(json_object_array_get_idx(keys, i), &s->keys[i], i, e))
			goto bad;
	for (i = 0; i < json_object_array_length(doms); i++, s->ndomains++)
		if (parse_domain(json_object_array_get_idx(doms, i), &s->domains[i], i, e))
			goto bad;
	for (i = 0; i < s->ndomains; i++) {
		if (!state_find_key(s, s->domains[i].key)) {
			mkerr_set(e, "domain %s names key %s, which is not in \"keys\"",
				  s->domains[i].name, s->domains[i].key);
			goto bad;
		}
	}
	json_object_put(root);
	return 0;
bad:
	json_object_put(root);
	state_free(s);
	return -1;
}

int state_load(const char *dir, struct state *s, struct mkerr *e)
{
	char path[4096], *text;
	struct stat st;
	ssize_t n;
	int fd, ret;

	memset(s, 0, sizeof(*s));
	if (snprintf(path, sizeof(path), "%s/" STATE_FILE, dir) >= (int)sizeof(path))
		return mkerr_set(e, "state directory path too long: %s", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return mkerr_set(e, "can't open the state file %s: %s", path,
				 strerror(errno));
	if (fstat(fd, &st) || st.st_size > STATE_MAX_BYTES) {
		close(fd);
		return mkerr_set(e, "the state file %s is larger than %d bytes; "
				 "it is not the hook's", path, STATE_MAX_BYTES);
	}
	text = malloc(st.st_size + 1);
	if (!text) {
		close(fd);
		return mkerr_set(e, "out of memory");
	}
	n = read(fd, text, st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(text);
		return mkerr_set(e, "can't read the state file %s", path);
	}
	text[n] = 0;
	ret = state_parse(text, s, e);
	free(text);
	if (ret)
		mkerr_prefix(e, "the state file %s is not valid; nothing was "
			     "changed. Keys it named are still in the mktme-kvm "
			     "keyring (mktmectl keys). Fix the file, or stop the "
			     "encrypted domains and remove it", path);
	return ret;
}

static json_object *format_json(const struct state *s)
{
	json_object *root = json_object_new_object();
	json_object *keys = json_object_new_array();
	json_object *doms = json_object_new_array();
	size_t i;

	json_object_object_add(root, "version", json_object_new_int(STATE_VERSION));
	for (i = 0; i < s->nkeys; i++) {
		const struct state_key *k = &s->keys[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "description", json_object_new_string(k->description));
		json_object_object_add(o, "serial", json_object_new_int(k->serial));
		json_object_object_add(o, "type", json_object_new_string(k->type));
		json_object_object_add(o, "algorithm", json_object_new_string(k->algorithm));
		json_object_object_add(o, "created", json_object_new_boolean(k->created));
		json_object_array_add(keys, o);
	}
	for (i = 0; i < s->ndomains; i++) {
		const struct state_domain *d = &s->domains[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "uuid", json_object_new_string(d->uuid));
		json_object_object_add(o, "name", json_object_new_string(d->name));
		json_object_object_add(o, "key", json_object_new_string(d->key));
		json_object_object_add(o, "phase", json_object_new_string(d->phase));
		if (d->daemon[0])
			json_object_object_add(o, "daemon",
					       json_object_new_string(d->daemon));
		json_object_array_add(doms, o);
	}
	json_object_object_add(root, "keys", keys);
	json_object_object_add(root, "domains", doms);
	return root;
}

char *state_format(const struct state *s)
{
	json_object *root = format_json(s);
	char *text = strdup(json_object_to_json_string_ext(root,
				JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));

	json_object_put(root);
	return text;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

int state_save(const char *dir, const struct state *s, gid_t group,
	       struct mkerr *e)
{
	char path[4096], tmp[4096 + 16], *text;
	int fd, dfd, err;

	if (snprintf(path, sizeof(path), "%s/" STATE_FILE, dir) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return mkerr_set(e, "state directory path too long: %s", dir);
	text = state_format(s);
	if (!text)
		return mkerr_set(e, "out of memory");
	/* Under the lock: a leftover temporary file is from a killed hook */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		err = errno;
		free(text);
		return mkerr_set(e, "can't create %s: %s", tmp, strerror(err));
	}
	if ((fchown(fd, 0, group) && errno != EPERM) ||
	    write_all(fd, text, strlen(text)) || write_all(fd, "\n", 1) ||
	    fsync(fd)) {
		err = errno;
		close(fd);
		unlink(tmp);
		free(text);
		return mkerr_set(e, "can't write %s: %s", tmp, strerror(err));
	}
	free(text);
	if (close(fd) || rename(tmp, path)) {
		err = errno;
		unlink(tmp);
		return mkerr_set(e, "can't replace %s: %s", path, strerror(err));
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

struct state_domain *state_find_domain(struct state *s, const char *uuid)
{
	size_t i;

	for (i = 0; i < s->ndomains; i++)
		if (!strcasecmp(s->domains[i].uuid, uuid))
			return &s->domains[i];
	return NULL;
}

struct state_key *state_find_key(struct state *s, const char *description)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i].description, description))
			return &s->keys[i];
	return NULL;
}

size_t state_key_users(const struct state *s, const char *description)
{
	size_t i, n = 0;

	for (i = 0; i < s->ndomains; i++)
		if (!strcmp(s->domains[i].key, description))
			n++;
	return n;
}

int state_add_domain(struct state *s, const struct state_domain *d)
{
	struct state_domain *a = realloc(s->domains, (s->ndomains + 1) * sizeof(*a));

	if (!a)
		return -1;
	s->domains = a;
	a[s->ndomains++] = *d;
	return 0;
}

int state_add_key(struct state *s, const struct state_key *k)
{
	struct state_key *a = realloc(s->keys, (s->nkeys + 1) * sizeof(*a));

	if (!a)
		return -1;
	s->keys = a;
	a[s->nkeys++] = *k;
	return 0;
}

void state_remove_domain(struct state *s, const char *uuid)
{
	struct state_domain *d = state_find_domain(s, uuid);

	if (d) {
		memmove(d, d + 1, (s->domains + s->ndomains - d - 1) * sizeof(*d));
		s->ndomains--;
	}
}

void state_remove_key(struct state *s, const char *description)
{
	struct state_key *k = state_find_key(s, description);

	if (k) {
		memmove(k, k + 1, (s->keys + s->nkeys - k - 1) * sizeof(*k));
		s->nkeys--;
	}
}

/* Append to buf (always NUL-terminated; cut when full) */
static void append(char *buf, size_t len, size_t *at, const char *str)
{
	size_t n = strlen(str);

	if (*at + 1 >= len)
		return;
	if (n > len - *at - 1)
		n = len - *at - 1;
	memcpy(buf + *at, str, n);
	*at += n;
	buf[*at] = 0;
}

void state_holders_text(const struct state *s, char *buf, size_t len)
{
	size_t i, j, at = 0, named;

	if (!len)
		return;
	buf[0] = 0;
	if (!s->nkeys) {
		append(buf, len, &at, "no encrypted domain of this host holds one "
		       "(mktmectl keys shows the keys that do)");
		return;
	}
	append(buf, len, &at, "KeyIDs held by encrypted domains: ");
	for (i = 0; i < s->nkeys; i++) {
		const struct state_key *k = &s->keys[i];

		if (i)
			append(buf, len, &at, "; ");
		named = 0;
		for (j = 0; j < s->ndomains; j++) {
			if (strcmp(s->domains[j].key, k->description))
				continue;
			if (named++)
				append(buf, len, &at, ", ");
			append(buf, len, &at, s->domains[j].name);
		}
		if (!named)
			append(buf, len, &at, "(none)");
		if (strncmp(k->description, HOOK_KEY_PREFIX, strlen(HOOK_KEY_PREFIX))) {
			append(buf, len, &at, " (shared key ");
			append(buf, len, &at, k->description);
			append(buf, len, &at, ")");
		}
	}
}
