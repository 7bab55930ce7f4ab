// SPDX-License-Identifier: GPL-2.0
/*
 * Who holds which KeyID: see holders.h.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holders.h"

struct holders {
	struct mktme_holder *v;
	int n, cap;
};

/* The entry for (keyid, pid), added if new; NULL without memory */
static struct mktme_holder *holder(struct holders *h, int keyid, pid_t pid)
{
	struct mktme_holder *bigger;
	int i;

	for (i = 0; i < h->n; i++)
		if (h->v[i].keyid == keyid && h->v[i].pid == pid)
			return &h->v[i];
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 16;
		bigger = realloc(h->v, h->cap * sizeof(*h->v));
		if (!bigger)
			return NULL;
		h->v = bigger;
	}
	h->v[h->n] = (struct mktme_holder){ .keyid = keyid, .pid = pid };
	return &h->v[h->n++];
}

static void read_comm(const char *proc, pid_t pid, char *comm, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/comm", proc, pid);
	f = fopen(path, "re");
	comm[0] = 0;
	if (f) {
		if (fgets(comm, len, f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
}

/* Keyed memory of one process: -errno only for a lack of memory */
static int read_smaps(const char *proc, pid_t pid, struct holders *h)
{
	char path[4096], *line = NULL;
	long rss = 0, value;
	struct mktme_holder *e;
	size_t cap = 0;
	int keyid, r = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/smaps", proc, pid);
	f = fopen(path, "re");
	if (!f)
		return 0;	/* gone, or not ours to read */
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "Rss: %ld kB", &value) == 1) {
			rss = value;
		} else if (sscanf(line, "KeyID: %d", &keyid) == 1 && keyid > 0) {
			e = holder(h, keyid, pid);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			e->keyed_kb += rss;
		}
	}
	free(line);
	fclose(f);
	return r;
}

/* A KVM debugfs directory "PID-FD": the VM's KeyID, 0 if none or unknown */
static int read_vm(const char *kvm, const char *name, pid_t *pid)
{
	char path[4096];
	int keyid = 0, fd;
	FILE *f;

	if (sscanf(name, "%d-%d", pid, &fd) != 2)
		return 0;
	snprintf(path, sizeof(path), "%s/%s/mktme_keyid", kvm, name);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &keyid) != 1)
		keyid = 0;
	fclose(f);
	return keyid;
}

static int cmp(const void *a, const void *b)
{
	const struct mktme_holder *x = a, *y = b;

	if (x->keyid != y->keyid)
		return x->keyid < y->keyid ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

int mktme_holders_read(const char *proc, const char *kvm,
		       struct mktme_holder **out, bool *vms_seen)
{
	struct holders h = { 0 };
	struct mktme_holder *e;
	struct dirent *d;
	pid_t pid;
	int r = 0, i, keyid;
	DIR *dir;

	*out = NULL;
	dir = opendir(proc);
	if (!dir)
		return -errno;
	while (!r && (d = readdir(dir))) {
		if (isdigit((unsigned char)d->d_name[0]))
			r = read_smaps(proc, atoi(d->d_name), &h);
	}
	closedir(dir);

	dir = opendir(kvm);
	*vms_seen = dir != NULL;
	while (!r && dir && (d = readdir(dir))) {
		keyid = read_vm(kvm, d->d_name, &pid);
		if (keyid <= 0)
			continue;
		e = holder(&h, keyid, pid);
		if (!e)
			r = -ENOMEM;
		else
			e->vms++;
	}
	if (dir)
		closedir(dir);
	if (r) {
		free(h.v);
		return r;
	}
	for (i = 0; i < h.n; i++)
		read_comm(proc, h.v[i].pid, h.v[i].comm, sizeof(h.v[i].comm));
	if (h.n)
		qsort(h.v, h.n, sizeof(*h.v), cmp);
	*out = h.v;
	return h.n;
}

json_object *mktme_holder_json(const struct mktme_holder *h)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "keyid", json_object_new_int(h->keyid));
	json_object_object_add(o, "pid", json_object_new_int(h->pid));
	json_object_object_add(o, "comm", json_object_new_string(h->comm));
	json_object_object_add(o, "keyed_kb", json_object_new_int64(h->keyed_kb));
	json_object_object_add(o, "vms", json_object_new_int(h->vms));
	return o;
}
