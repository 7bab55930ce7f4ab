// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers of the keyed-memory lab programs (keyed*.c): the system call,
 * contents patterns, guarded mappings, /proc/PID/smaps, /proc/keys users=
 * counts, pagemap, and the emulator's checker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keyed_lib.h"

long sys_encrypt_mprotect(void *addr, size_t len, unsigned long prot,
			  key_serial_t serial, unsigned long flags)
{
	return syscall(NR_encrypt_mprotect, addr, len, prot, (long)serial,
		       flags);
}

long encrypt_mprotect(void *addr, size_t len, unsigned long prot,
		      key_serial_t serial)
{
	return sys_encrypt_mprotect(addr, len, prot, serial, 0);
}

const char *ename(int e)
{
	const char *s = e ? strerrorname_np(e) : "no error";

	return s ? s : "?";
}

/* Files */

char *read_text(const char *path)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *bigger;
	int fd = open(path, O_RDONLY);
	ssize_t n = 0;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	/* seq_file hands out a page or so per read() */
	while ((n = read(fd, buf + len, cap - 1 - len)) > 0) {
		len += n;
		if (cap - 1 - len < 8192) {
			bigger = realloc(buf, cap * 2);
			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
	}
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[len] = 0;
	return buf;
}

/* A "Name: value kB" field of a proc file, -1 if absent */
static long proc_field_kb(const char *path, const char *name)
{
	char *s = read_text(path), *p;
	size_t n = strlen(name);
	long v = -1;

	for (p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, name, n) && p[n] == ':') {
			v = strtol(p + n + 1, NULL, 10);
			break;
		}
	}
	free(s);
	return v;
}

long meminfo_kb(const char *name)
{
	return proc_field_kb("/proc/meminfo", name);
}

long status_kb(const char *name)
{
	return proc_field_kb("/proc/self/status", name);
}

long read_long(const char *path)
{
	char *s = read_text(path);
	long v = s ? strtol(s, NULL, 10) : -1;

	free(s);
	return v;
}

/* Contents: a position-independent pattern of 64-bit words */

/* Distinct for every (seed, word): the multiplier is odd */
uint64_t pattern(uint64_t seed, size_t word)
{
	return ((seed << 40) ^ word) * 0x9e3779b97f4a7c15ull;
}

void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = pattern(seed, i);
}

/* Do bytes [off, off + len) of base hold what fill(base, ..., seed) wrote? */
bool holds_at(const void *base, size_t off, size_t len, uint64_t seed)
{
	const volatile uint64_t *w = base;

	for (size_t i = off / 8; i < (off + len) / 8; i++)
		if (w[i] != pattern(seed, i))
			return false;
	return true;
}

bool holds(const void *p, size_t len, uint64_t seed)
{
	return holds_at(p, 0, len, seed);
}

bool is_zero(const void *p, size_t len)
{
	const volatile uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Mappings, each between two PROT_NONE guard pages so it never merges */

char *map_anon_aligned(size_t len, size_t align)
{
	size_t res_len = len + align + 2 * PAGE;
	char *res = mmap(NULL, res_len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *p, *tail;

	if (res == MAP_FAILED) {
		tap_ok(false, "mmap of %zu bytes: %s", len, strerror(errno));
		exit(tap_end());
	}
	p = (char *)(((uintptr_t)res + PAGE + align - 1) & ~(align - 1));
	if (p - PAGE > res)
		munmap(res, p - PAGE - res);
	tail = p + len + PAGE;
	if (tail < res + res_len)
		munmap(tail, res + res_len - tail);
	if (mprotect(p, len, RW)) {
		tap_ok(false, "mprotect of a new mapping: %s", strerror(errno));
		exit(tap_end());
	}
	return p;
}

char *map_anon(size_t len)
{
	return map_anon_aligned(len, PAGE);
}

void unmap(void *p, size_t len)
{
	munmap((char *)p - PAGE, len + 2 * PAGE);
}

/* A mapping keyed with key (prot read-write), or NULL */
char *map_keyed(size_t len, key_serial_t key)
{
	char *p = map_anon(len);

	if (encrypt_mprotect(p, len, RW, key)) {
		tap_diag("encrypt_mprotect(%zu bytes, key %d): %s", len, key,
			 ename(errno));
		unmap(p, len);
		return NULL;
	}
	return p;
}

/* /proc/PID/smaps */

/* Every VMA of pid; returns how many, or -1 */
int smaps_read(pid_t pid, struct vma **out)
{
	char path[64], *text, *line, *save = NULL;
	struct vma *v = NULL, *bigger;
	int n = 0, cap = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	text = read_text(path);
	if (!text)
		return -1;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e;
		char perms[5], name[32];
		long val;

		if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) == 3) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				bigger = realloc(v, cap * sizeof(*v));
				if (!bigger)
					break;
				v = bigger;
			}
			v[n] = (struct vma){ .start = s, .end = e, .keyid = -1 };
			memcpy(v[n].perms, perms, sizeof(perms));
			n++;
		} else if (n && !strncmp(line, "VmFlags:", 8)) {
			v[n - 1].mergeable = strstr(line, " mg") != NULL;
		} else if (n && sscanf(line, "%31[^:]: %ld", name, &val) == 2) {
			struct vma *c = &v[n - 1];

			if (!strcmp(name, "KeyID")) {
				c->keyid = val;
				c->keyid_lines++;
			} else if (!strcmp(name, "Rss")) {
				c->rss = val;
			} else if (!strcmp(name, "Swap")) {
				c->swap = val;
			} else if (!strcmp(name, "AnonHugePages")) {
				c->anon_huge = val;
			}
		}
	}
	free(text);
	*out = v;
	return n;
}

/* The VMA of pid that holds addr */
bool vma_of(pid_t pid, const void *addr, struct vma *out)
{
	struct vma *v;
	int n = smaps_read(pid, &v);
	bool found = false;

	for (int i = 0; i < n && !found; i++) {
		if (v[i].start <= (uintptr_t)addr && (uintptr_t)addr < v[i].end) {
			*out = v[i];
			found = true;
		}
	}
	if (n >= 0)
		free(v);
	return found;
}

bool vma_at(const void *addr, struct vma *out)
{
	return vma_of(getpid(), addr, out);
}

/* The KeyID of the VMA at addr, -2 if none */
int keyid_at(const void *addr)
{
	struct vma v;

	return vma_at(addr, &v) ? v.keyid : -2;
}

/* How many of our VMAs overlap [p, p + len) */
int vmas_in(const void *p, size_t len)
{
	struct vma *v;
	int n = smaps_read(getpid(), &v), count = 0;

	for (int i = 0; i < n; i++)
		if (v[i].start < (uintptr_t)p + len && v[i].end > (uintptr_t)p)
			count++;
	if (n >= 0)
		free(v);
	return count;
}

/* Our VMAs keyed with keyid, and their resident pages */
void keyed_totals(int keyid, int *vmas, long *pages)
{
	struct vma *v;
	int n = smaps_read(getpid(), &v);

	*vmas = 0;
	*pages = 0;
	for (int i = 0; i < n; i++) {
		if (v[i].keyid == keyid) {
			(*vmas)++;
			*pages += v[i].rss / 4;
		}
	}
	if (n >= 0)
		free(v);
}

/* The page frame number behind addr (0 if none), from /proc/self/pagemap */
uint64_t pfn_of(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (uintptr_t)addr / PAGE * sizeof(e)) !=
	    sizeof(e))
		e = 0;
	close(fd);
	return e >> 63 ? e & ((1ull << 55) - 1) : 0;
}

/*
 * Release pages waiting in per-CPU LRU batches: a batch holds a reference
 * on each of its folios.  Keyed folios skip the batches, so this is only a
 * precaution; writing 1 to drop_caches drains every CPU's batches first
 * (it accepts 1 to 4 only).  A failed write fails the test.
 */
void drain_lru(void)
{
	write_or_fail("/proc/sys/vm/drop_caches", "1");
}

/* Write s to a sysfs or procfs file; a failure fails the test */
bool write_or_fail(const char *path, const char *s)
{
	int e = lab_write_file(path, s);

	if (e)
		tap_ok(false, "write \"%s\" to %s: %s", s, path, strerror(-e));
	return !e;
}

/* Keys: /proc/keys "... DESC: keyid=N type=T algorithm=A users=U" */

char *proc_keys_line(key_serial_t key)
{
	static char line[512];
	char id[16], *s = read_text("/proc/keys"), *l, *save = NULL;
	bool found = false;

	snprintf(id, sizeof(id), "%08x ", key);
	for (l = s ? strtok_r(s, "\n", &save) : NULL; l && !found;
	     l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, id, strlen(id))) {
			snprintf(line, sizeof(line), "%s", l);
			found = true;
		}
	}
	free(s);
	return found ? line : NULL;
}

int key_field(key_serial_t key, const char *field)
{
	char *l = proc_keys_line(key), *p = l ? strstr(l, field) : NULL;

	return p ? atoi(p + strlen(field)) : -1;
}

int users(key_serial_t key)
{
	return key_field(key, " users=");
}

/*
 * Poll users= for want: VMAs drop their references after an RCU grace
 * period, pages when they leave the per-CPU LRU batches.  That takes
 * milliseconds, but seconds have been seen after CPU hotplug: wait up to
 * 10 s, and say so when it took more than 2.  Returns the last value seen.
 */
int wait_users(key_serial_t key, int want)
{
	int got = users(key), i;

	for (i = 0; i < WAIT_STEPS && got != want; i++) {
		if (i % 20 == 0)
			drain_lru();
		usleep(10000);
		got = users(key);
	}
	if (got == want && i > 200)
		tap_diag("users=%d only after %.1f s", want, i / 100.0);
	return got;
}

bool users_are(key_serial_t key, int want, const char *fmt, ...)
{
	char what[256];
	int got = wait_users(key, want);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (tap_ok(got == want, "%s: users=%d", what, want))
		return true;
	tap_diag("/proc/keys says users=%d", got);
	return false;
}

/* 1 + keyed VMAs + keyed pages, as our own smaps shows them */
int users_expected(int keyid)
{
	int vmas;
	long pages;

	keyed_totals(keyid, &vmas, &pages);
	return 1 + vmas + (int)pages;
}

key_serial_t add_mktme(const char *desc, const char *payload)
{
	return add_key("mktme", desc, payload, strlen(payload),
		       KEY_SPEC_PROCESS_KEYRING);
}

bool wait_in_use(long want)
{
	for (int i = 0; i < WAIT_STEPS; i++) {
		if (read_long(SYSFS "keyids_in_use") == want) {
			if (i > 200)
				tap_diag("keyids_in_use %ld only after %.1f s",
					 want, i / 100.0);
			return true;
		}
		if (i % 20 == 0)
			drain_lru();
		usleep(10000);
	}
	return false;
}

/* The emulator's alias-coherency checker */

bool checker_set(bool on, bool reset)
{
	char args[64];
	json_object *r;

	snprintf(args, sizeof(args), "{\"enabled\":%s,\"reset\":%s}",
		 on ? "true" : "false", reset ? "true" : "false");
	r = lab_qmp_args("mktme-checker-set", args);
	json_object_put(r);
	return r != NULL;
}
