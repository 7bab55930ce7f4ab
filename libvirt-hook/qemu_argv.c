// SPDX-License-Identifier: GPL-2.0
/* QEMU's command line, keyed: see qemu_argv.h */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qemu_argv.h"

const char *qemu_argv_uuid(int argc, char **argv)
{
	int i;

	for (i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "-uuid"))
			return argv[i + 1];
	return NULL;
}

void qemu_argv_free(char **argv)
{
	char **p;

	for (p = argv; p && *p; p++)
		free(*p);
	free(argv);
}

/* A growing string */
struct buf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
	char *ns;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;

		ns = realloc(b->s, cap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* A value in key=value form: commas doubled, as QEMU's option syntax wants */
static void put_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		put(b, s, 1);
		if (*s == ',')
			put(b, ",", 1);
	}
}

/* KEY=VALUE for one JSON member (scalars; arrays of scalars as KEY.N=) */
static int put_member(struct buf *b, const char *key, json_object *v,
		      struct mkerr *e)
{
	char num[32];
	size_t i;

	switch (json_object_get_type(v)) {
	case json_type_string:
		puts_(b, ",");
		puts_(b, key);
		puts_(b, "=");
		put_escaped(b, json_object_get_string(v));
		return 0;
	case json_type_int:
		snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(v));
		if (json_object_get_int64(v) == INT64_MAX)
			snprintf(num, sizeof(num), "%llu",
				 (unsigned long long)json_object_get_uint64(v));
		puts_(b, ",");
		puts_(b, key);
		puts_(b, "=");
		puts_(b, num);
		return 0;
	case json_type_boolean:
		puts_(b, ",");
		puts_(b, key);
		puts_(b, json_object_get_boolean(v) ? "=on" : "=off");
		return 0;
	case json_type_array:
		for (i = 0; i < json_object_array_length(v); i++) {
			char sub[128];
			json_object *el = json_object_array_get_idx(v, i);

			if (json_object_is_type(el, json_type_array) ||
			    json_object_is_type(el, json_type_object))
				break;
			snprintf(sub, sizeof(sub), "%s.%zu", key, i);
			if (put_member(b, sub, el, e))
				return -1;
		}
		if (i == json_object_array_length(v))
			return 0;
		/* fall through */
	default:
		return mkerr_set(e, "memory backend property %s has a value the "
				 "wrapper cannot pass on", key);
	}
}

char *qemu_object_keyval(const char *json, const char *new_type, int serial,
			 struct mkerr *e)
{
	struct buf b = { 0 };
	json_object *o = json_tokener_parse(json), *id;
	char key[32];

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		mkerr_set(e, "-object %.60s... is not a JSON object", json);
		return NULL;
	}
	if (!json_object_object_get_ex(o, "id", &id) ||
	    !json_object_is_type(id, json_type_string)) {
		json_object_put(o);
		mkerr_set(e, "a memory backend without an id");
		return NULL;
	}
	puts_(&b, new_type);
	json_object_object_foreach(o, k, v) {
		if (!strcmp(k, "qom-type"))
			continue;
		if (!strcmp(k, "key")) {
			mkerr_set(e, "memory backend %s already has a key",
				  json_object_get_string(id));
			free(b.s);
			json_object_put(o);
			return NULL;
		}
		if (put_member(&b, k, v, e)) {
			free(b.s);
			json_object_put(o);
			return NULL;
		}
	}
	snprintf(key, sizeof(key), ",key=%d", serial);
	puts_(&b, key);
	json_object_put(o);
	if (b.oom) {
		free(b.s);
		mkerr_set(e, "out of memory");
		return NULL;
	}
	return b.s;
}

/* The qom-type of a JSON -object argument (NULL if not JSON) */
static char *json_qom_type(const char *arg)
{
	json_object *o, *t;
	char *type = NULL;

	if (arg[0] != '{')
		return NULL;
	o = json_tokener_parse(arg);
	if (o && json_object_object_get_ex(o, "qom-type", &t) &&
	    json_object_is_type(t, json_type_string))
		type = strdup(json_object_get_string(t));
	json_object_put(o);
	return type;
}

/* Does a -numa argument allocate RAM itself ("mem=")? */
static bool numa_allocates(const char *arg)
{
	return !strncmp(arg, "node,", 5) &&
	       (strstr(arg, ",mem=") != NULL);
}

char **qemu_argv_rewrite(int argc, char **argv, int serial, int *rewritten,
			 struct mkerr *e)
{
	char **out = calloc(argc + 1, sizeof(*out));
	bool ram_from_backend = false;
	int i;

	*rewritten = 0;
	if (!out) {
		mkerr_set(e, "out of memory");
		return NULL;
	}
	for (i = 0; i < argc; i++) {
		const char *prev = i ? argv[i - 1] : "";
		char *type = NULL;

		if (!strcmp(prev, "-object"))
			type = json_qom_type(argv[i]);
		if (type && !strcmp(type, "memory-backend-ram")) {
			out[i] = qemu_object_keyval(argv[i], MKTME_BACKEND, serial, e);
			free(type);
			if (!out[i])
				goto fail;
			(*rewritten)++;
			continue;
		}
		if ((type && !strncmp(type, "memory-backend-", 15)) ||
		    (!type && !strcmp(prev, "-object") &&
		     !strncmp(argv[i], "memory-backend-", 15))) {
			mkerr_set(e, "QEMU was to get a memory backend the wrapper "
				  "cannot key (%.80s): encrypted guest RAM must be "
				  "private anonymous memory (no hugepages, file, "
				  "memfd or shared access in <memoryBacking>)", argv[i]);
			free(type);
			goto fail;
		}
		free(type);
		/* Guest RAM from backends: the machine's, or the NUMA nodes' */
		if ((!strcmp(prev, "-machine") && strstr(argv[i], "memory-backend=")) ||
		    (!strcmp(prev, "-numa") && strstr(argv[i], "memdev=")))
			ram_from_backend = true;
		if (!strcmp(prev, "-numa") && numa_allocates(argv[i])) {
			mkerr_set(e, "QEMU was to allocate a NUMA node's RAM itself "
				  "(-numa %s), which the wrapper cannot key", argv[i]);
			goto fail;
		}
		out[i] = strdup(argv[i]);
		if (!out[i]) {
			mkerr_set(e, "out of memory");
			goto fail;
		}
	}
	if (*rewritten == 0 || !ram_from_backend) {
		mkerr_set(e, "libvirt gave QEMU no memory-backend-ram object to key "
			  "(a machine type without a default RAM id?): use a q35 "
			  "or pc machine type of QEMU 10.0");
		goto fail;
	}
	return out;
fail:
	qemu_argv_free(out);
	return NULL;
}

int qemu_opt_value(const char *opts, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key), n;
	const char *p = opts;

	while (*p) {
		/* p starts an option; find its end (a single comma) */
		bool match = !strncmp(p, key, klen) && p[klen] == '=';
		const char *v = p + klen + 1;

		n = 0;
		for (; *p; p++) {
			if (*p == ',' && p[1] == ',') {
				if (match && n + 1 < len)
					buf[n++] = ',';
				else if (match)
					return -1;
				p++;
				continue;
			}
			if (*p == ',')
				break;
			if (match && p >= v) {
				if (n + 1 >= len)
					return -1;
				buf[n++] = *p;
			}
		}
		if (match) {
			buf[n] = 0;
			return 0;
		}
		if (*p == ',')
			p++;
	}
	return -1;
}

int qemu_argv_hotplug(int argc, char **argv)
{
	char v[64];
	int i;

	for (i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "-m") && !qemu_opt_value(argv[i + 1], "maxmem", v, sizeof(v)))
			return 1;
	return 0;
}

int qemu_argv_monitor(int argc, char **argv, char *path, size_t len, int *fd,
		      struct mkerr *e)
{
	char id[128] = "", mode[32], v[32], head[160];
	int i;

	path[0] = 0;
	*fd = -1;
	for (i = 1; i + 1 < argc && !id[0]; i++)
		if (!strcmp(argv[i], "-mon") &&
		    !qemu_opt_value(argv[i + 1], "mode", mode, sizeof(mode)) &&
		    !strcmp(mode, "control") &&
		    qemu_opt_value(argv[i + 1], "chardev", id, sizeof(id)))
			id[0] = 0;
	if (!id[0])
		return mkerr_set(e, "no QMP monitor (-mon ...,mode=control) on "
				 "QEMU's command line");
	snprintf(head, sizeof(head), "socket,id=%s,", id);
	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-chardev") || strncmp(argv[i + 1], head, strlen(head)))
			continue;
		if (qemu_opt_value(argv[i + 1], "server", v, sizeof(v)) ||
		    strcmp(v, "on"))
			break;
		if (!qemu_opt_value(argv[i + 1], "fd", v, sizeof(v))) {
			char *end;
			long n = strtol(v, &end, 10);

			if (*end || n < 0 || n > 65535)
				break;
			*fd = (int)n;
			return i + 1;
		}
		if (!qemu_opt_value(argv[i + 1], "path", path, len))
			return i + 1;
		break;
	}
	return mkerr_set(e, "the QMP monitor %s is not a UNIX socket server with "
			 "path= or fd=", id);
}
