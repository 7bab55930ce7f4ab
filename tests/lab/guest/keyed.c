// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of keyed anonymous memory on the patched 6.12 kernel, booted on
 * the emulated TME-MK platform: encrypt_mprotect() (x86_64 system call 463)
 * is mprotect() that also keys private anonymous memory with the KeyID of
 * an "mktme" key (serial -1: back to KeyID 0).
 *
 * Checked, one TAP line per behaviour: the KeyID line of /proc/PID/smaps;
 * contents discarded on keying; the ciphertext in RAM (AES-XTS-128 under a
 * user key, tweak = physical address, computed on the host); every error
 * of the system call, with nothing changed after one; keyed VMAs never
 * merging with another KeyID; the KeyID's references ("users=" in
 * /proc/keys) through mprotect splits, munmap, mremap and fork; contents
 * across fork, mremap, mprotect, compaction and memory pressure with swap;
 * kernel access (/proc/PID/mem, ptrace, pipes, futexes) and the paths that
 * must refuse keyed pages (O_DIRECT, vmsplice, process_vm_readv); no KSM,
 * no THP, no swap, no migration of keyed pages; serial -1; a key revoked
 * under keyed memory.  The emulator's alias-coherency checker watches the
 * life cycle of keyed pages at the start (the whole run with
 * keyed.checker=all on the kernel command line: see test_checker_window())
 * and must count no read violation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

#define NR_encrypt_mprotect	463
#define PAGE			4096UL
#define MiB			(1024UL * 1024)
#define RW			(PROT_READ | PROT_WRITE)
#define SYSFS			"/sys/kernel/mm/mktme/"
#define THP			"/sys/kernel/mm/transparent_hugepage/"
#define COMPACT			"/proc/sys/vm/compact_memory"
#define RAMDISK			"/dev/ram0"

/* The user key: AES-XTS-128, data key then tweak key (PCONFIG order) */
static const uint8_t data_key[16] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};
static const uint8_t tweak_key[16] = {
	0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87,
	0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
};

static key_serial_t ukey, ckey;	/* a user key, a CPU-generated key */
static int ukeyid, ckeyid;
/* The checker: keyed.checker=all (whole run), =off, else a window */
static bool checker_all, checker_off;

static long encrypt_mprotect(void *addr, size_t len, unsigned long prot,
			     key_serial_t serial)
{
	return syscall(NR_encrypt_mprotect, addr, len, prot, (long)serial);
}

static const char *ename(int e)
{
	const char *s = e ? strerrorname_np(e) : "no error";

	return s ? s : "?";
}

/* Files */

static char *read_text(const char *path)
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

/* A /proc/meminfo field in kB, -1 if absent */
static long meminfo_kb(const char *name)
{
	char *s = read_text("/proc/meminfo"), *p;
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

static long read_long(const char *path)
{
	char *s = read_text(path);
	long v = s ? strtol(s, NULL, 10) : -1;

	free(s);
	return v;
}

/* Contents: a position-independent pattern of 64-bit words */

/* Distinct for every (seed, word): the multiplier is odd */
static uint64_t pattern(uint64_t seed, size_t word)
{
	return ((seed << 40) ^ word) * 0x9e3779b97f4a7c15ull;
}

static void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = pattern(seed, i);
}

/* Do bytes [off, off + len) of base hold what fill(base, ..., seed) wrote? */
static bool holds_at(const void *base, size_t off, size_t len, uint64_t seed)
{
	const volatile uint64_t *w = base;

	for (size_t i = off / 8; i < (off + len) / 8; i++)
		if (w[i] != pattern(seed, i))
			return false;
	return true;
}

static bool holds(const void *p, size_t len, uint64_t seed)
{
	return holds_at(p, 0, len, seed);
}

static bool is_zero(const void *p, size_t len)
{
	const volatile uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Mappings, each between two PROT_NONE guard pages so it never merges */

static char *map_anon_aligned(size_t len, size_t align)
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

static char *map_anon(size_t len)
{
	return map_anon_aligned(len, PAGE);
}

static void unmap(void *p, size_t len)
{
	munmap((char *)p - PAGE, len + 2 * PAGE);
}

/* A mapping keyed with key (prot read-write), or NULL */
static char *map_keyed(size_t len, key_serial_t key)
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

struct vma {
	uintptr_t start, end;
	char perms[5];
	int keyid;		/* -1 without a KeyID line */
	int keyid_lines;
	long rss, swap, anon_huge;	/* kB */
	bool mergeable;		/* "mg" in VmFlags */
};

/* Every VMA of pid; returns how many, or -1 */
static int smaps_read(pid_t pid, struct vma **out)
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
static bool vma_of(pid_t pid, const void *addr, struct vma *out)
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

static bool vma_at(const void *addr, struct vma *out)
{
	return vma_of(getpid(), addr, out);
}

/* The KeyID of the VMA at addr, -2 if none */
static int keyid_at(const void *addr)
{
	struct vma v;

	return vma_at(addr, &v) ? v.keyid : -2;
}

/* How many of our VMAs overlap [p, p + len) */
static int vmas_in(const void *p, size_t len)
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
static void keyed_totals(int keyid, int *vmas, long *pages)
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
static uint64_t pfn_of(const void *addr)
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
 * on each of its folios, so an unmapped keyed page (and its KeyID
 * reference) can outlive munmap() on a CPU that is otherwise idle.
 * drop_caches 1 drains every CPU's batches first; 4 keeps it quiet.
 */
static void drain_lru(void)
{
	lab_write_file("/proc/sys/vm/drop_caches", "5");
}

/* Keys: /proc/keys "... DESC: keyid=N type=T algorithm=A users=U" */

static char *proc_keys_line(key_serial_t key)
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

static int key_field(key_serial_t key, const char *field)
{
	char *l = proc_keys_line(key), *p = l ? strstr(l, field) : NULL;

	return p ? atoi(p + strlen(field)) : -1;
}

static int users(key_serial_t key)
{
	return key_field(key, " users=");
}

/*
 * Poll users= for want: VMAs drop their references after an RCU grace
 * period, pages when they leave the per-CPU LRU batches.  That takes
 * milliseconds, but seconds have been seen after CPU hotplug: wait up to
 * 10 s, and say so when it took more than 2.  Returns the last value seen.
 */
#define WAIT_STEPS	1000		/* of 10 ms */

static int wait_users(key_serial_t key, int want)
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

static bool users_are(key_serial_t key, int want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool users_are(key_serial_t key, int want, const char *fmt, ...)
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
static int users_expected(int keyid)
{
	int vmas;
	long pages;

	keyed_totals(keyid, &vmas, &pages);
	return 1 + vmas + (int)pages;
}

static key_serial_t add_mktme(const char *desc, const char *payload)
{
	return add_key("mktme", desc, payload, strlen(payload),
		       KEY_SPEC_PROCESS_KEYRING);
}

static bool wait_in_use(long want)
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

/* Set-up */

static bool checker_set(bool on, bool reset)
{
	char args[64];
	json_object *r;

	snprintf(args, sizeof(args), "{\"enabled\":%s,\"reset\":%s}",
		 on ? "true" : "false", reset ? "true" : "false");
	r = lab_qmp_args("mktme-checker-set", args);
	json_object_put(r);
	return r != NULL;
}

static bool test_setup(void)
{
	char payload[160], *p = payload, *cmdline = read_text("/proc/cmdline");
	char *m;
	long ret;

	checker_all = cmdline && strstr(cmdline, "keyed.checker=all");
	checker_off = cmdline && strstr(cmdline, "keyed.checker=off");
	free(cmdline);
	if (!tap_ok(access(SYSFS, F_OK) == 0, "TME-MK enabled (%s)", SYSFS))
		return false;
	if (checker_all)
		tap_ok(checker_set(true, true), "checker: on for the whole run "
		       "(keyed.checker=all), counters reset");

	p += sprintf(p, "type=user algorithm=aes-xts-128 key=");
	for (int i = 0; i < 16; i++)
		p += sprintf(p, "%02x", data_key[i]);
	p += sprintf(p, " tweak=");
	for (int i = 0; i < 16; i++)
		p += sprintf(p, "%02x", tweak_key[i]);
	ukey = add_mktme("keyed-user", payload);
	ukeyid = key_field(ukey, " keyid=");
	if (!tap_ok(ukey > 0 && ukeyid > 0 && users(ukey) == 1,
		    "keys: a user key, AES-XTS-128 (KeyID %d), users=1",
		    ukeyid))
		return false;

	m = map_anon(PAGE);
	errno = 0;
	ret = encrypt_mprotect(m, 0, RW, ukey);
	unmap(m, PAGE);
	return tap_ok(ret == 0,
		      "encrypt_mprotect() is system call %d: len 0 returns 0 "
		      "(%ld, %s)", NR_encrypt_mprotect, ret, ename(errno));
}

static bool add_cpu_key(void)
{
	ckey = add_mktme("keyed-cpu", "type=cpu algorithm=aes-xts-256");
	ckeyid = key_field(ckey, " keyid=");
	return tap_ok(ckey > 0 && ckeyid > 0 && ckeyid != ukeyid &&
		      users(ckey) == 1,
		      "keys: a CPU-generated key, AES-XTS-256 (KeyID %d), "
		      "users=1", ckeyid);
}

/*
 * The life cycle of keyed pages under the emulator's alias-coherency
 * checker: allocation (KeyID-0 lines written back, zeroing through the
 * KeyID), user writes, a kernel read through the KeyID (/proc/self/mem),
 * free (keyed lines written back) and reuse of the memory at KeyID 0.
 *
 * While the checker is on, every data access of a vCPU takes QEMU's slow
 * path under its global lock, and a busy vCPU starves QEMU's main loop
 * (the lab channel): the lab kernel (lockdep, KASAN, a 250 Hz tick) then
 * runs some hundred times slower.  So, unless the kernel command line says
 * keyed.checker=all, the checker is on for this part only, as short as it
 * can be: CPU 1 offline (allowed: only the user key exists yet; the suite
 * takes MONITOR/MWAIT away so that idle and offline vCPUs halt), lockdep
 * validation paused (these paths run again under it later).  It is
 * switched off before it is queried, at the end; its counters stay.
 */
static void test_checker_window(void)
{
	const char *cpu1 = "/sys/devices/system/cpu/cpu1/online";
	const char *prove = "/proc/sys/kernel/prove_locking";
	bool offline = false, unproved = false;
	uint64_t buf[PAGE / 8];
	char *k, *u;
	int fd;

	if (checker_off) {
		tap_skip("keyed.checker=off", "checker: the keyed page life "
			 "cycle");
		return;
	}
	if (!checker_all) {
		offline = access(cpu1, W_OK) == 0 && !lab_write_file(cpu1, "0");
		unproved = read_long(prove) == 1 && !lab_write_file(prove, "0");
		tap_diag("checker: switching on, CPU 1 %s, lockdep validation "
			 "%s", offline ? "offline" : "online",
			 unproved ? "paused" : "as it was");
		if (!tap_ok(checker_set(true, true),
			    "checker: on for the keyed page life cycle, "
			    "counters reset"))
			goto out;
	}
	k = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (k == MAP_FAILED || encrypt_mprotect(k, 2 * PAGE, RW, ukey)) {
		tap_ok(false, "checker: key 2 pages: %s", ename(errno));
		goto off;
	}
	fill(k, PAGE, 40);
	fd = open("/proc/self/mem", O_RDONLY);
	tap_ok(holds(k, PAGE, 40) && is_zero(k + PAGE, PAGE) && fd >= 0 &&
	       pread(fd, buf, PAGE, (uintptr_t)k) == PAGE &&
	       holds(buf, PAGE, 40),
	       "checker: keyed pages are zeroed, written, and read by the "
	       "kernel through their KeyID");
	if (fd >= 0)
		close(fd);
	munmap(k, 2 * PAGE);
	/* The freed keyed frames are the first reused (LIFO per-CPU lists) */
	u = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u != MAP_FAILED) {
		fill(u, 2 * PAGE, 41);
		tap_ok(holds(u, 2 * PAGE, 41), "checker: memory reused at "
		       "KeyID 0 after munmap() of keyed pages works");
		munmap(u, 2 * PAGE);
	}
off:
	if (!checker_all)
		tap_ok(checker_set(false, false), "checker: off (counters kept "
		       "for the end)");
out:
	if (unproved)
		lab_write_file(prove, "1");
	if (offline && lab_write_file(cpu1, "1"))
		tap_diag("CPU 1 does not come back online");
	users_are(ukey, 1, "checker: users back to 1");
}

/* Keying: smaps, zeroing, protection, data */

static void test_smaps_lines(void)
{
	struct vma *v;
	int n = smaps_read(getpid(), &v), bad = 0;

	for (int i = 0; i < n; i++)
		if (v[i].keyid_lines != 1 || v[i].keyid != 0)
			bad++;
	tap_ok(n > 0 && bad == 0,
	       "smaps: one KeyID line in each of %d VMAs, 0 while nothing is "
	       "keyed (%d not)", n, bad);
	if (n >= 0)
		free(v);
}

static void test_keying(void)
{
	const size_t len = 4 * PAGE;
	char *p = map_anon(len);
	struct vma v = { .keyid = -2 };
	long r;

	fill(p, len, 1);
	r = encrypt_mprotect(p, len, PROT_READ, ukey);
	tap_ok(r == 0, "key 4 written pages with the user key, PROT_READ (%s)",
	       r ? ename(errno) : "0");
	vma_at(p, &v);
	tap_ok(v.keyid == ukeyid && v.keyid_lines == 1 &&
	       v.start == (uintptr_t)p && v.end == (uintptr_t)p + len,
	       "smaps: the keyed VMA shows KeyID: %d (%d)", ukeyid, v.keyid);
	tap_ok(!strcmp(v.perms, "r--p"),
	       "the protection applies as with mprotect() (%s)", v.perms);
	tap_ok(is_zero(p, len),
	       "existing contents are discarded: the keyed range reads zeros");
	tap_ok(mprotect(p, len, RW) == 0 && keyid_at(p) == ukeyid,
	       "mprotect() keeps the KeyID");
	fill(p, len, 2);
	tap_ok(holds(p, len, 2), "data written through the keyed mapping "
	       "reads back");
	users_are(ukey, 1 + 1 + 4, "users: key + 1 VMA + 4 pages");
	unmap(p, len);
	users_are(ukey, 1, "users: back to 1 after munmap");
}

/*
 * What RAM holds: the page at KeyID 0 (the monitor's pmemsave) is AES-XTS
 * of the plaintext, each 16-byte block with its physical address as tweak.
 * Run on each CPU, so that the page comes from its package's node and is
 * encrypted by that package's key table.
 */
static void test_ciphertext(int cpu)
{
	static uint8_t ct[PAGE], ref[PAGE];
	uint8_t xts_key[32];
	cpu_set_t one, all;
	uint64_t pfn, pa;
	int same = 0, bad = 0;
	char *p = NULL;

	sched_getaffinity(0, sizeof(all), &all);
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one)) {
		tap_skip("CPU not online", "ciphertext on CPU %d's node", cpu);
		return;
	}
	p = map_keyed(PAGE, ukey);
	if (!p) {
		tap_ok(false, "ciphertext (CPU %d): key a page", cpu);
		goto out;
	}
	fill(p, PAGE, 3);
	pfn = pfn_of(p);
	pa = pfn * PAGE;
	tap_ok(pfn != 0, "ciphertext (CPU %d): pagemap gives the keyed page's "
	       "frame (%#llx)", cpu, (unsigned long long)pa);
	if (!tap_ok(lab_physread(pa, ct, PAGE) == 0,
		    "ciphertext (CPU %d): the lab channel reads the page at "
		    "KeyID 0", cpu))
		goto out;
	for (size_t i = 0; i < PAGE; i += 16)
		same += !memcmp(ct + i, p + i, 16);
	tap_ok(same == 0, "ciphertext (CPU %d): no 16-byte block of RAM equals "
	       "the plaintext (%d do)", cpu, same);
	memcpy(xts_key, data_key, 16);
	memcpy(xts_key + 16, tweak_key, 16);
	for (size_t i = 0; i < PAGE && bad < 3; i += 16)
		if (lab_xts(xts_key, sizeof(xts_key), pa + i,
			    (const uint8_t *)p + i, ref + i, 16, false) < 0)
			bad++;
	tap_ok(bad == 0 && memcmp(ref, ct, PAGE) == 0,
	       "ciphertext (CPU %d): RAM holds AES-XTS-128 of the plaintext "
	       "under the user key, tweak = physical address (256 blocks)",
	       cpu);
out:
	if (p)
		unmap(p, PAGE);
	sched_setaffinity(0, sizeof(all), &all);
}

static void test_cpu_key(void)
{
	const size_t len = 2 * PAGE;
	uint8_t ct[64];
	char *p = map_anon(len);
	long r;

	fill(p, len, 4);
	r = encrypt_mprotect(p, len, RW, ckey);
	tap_ok(r == 0 && keyid_at(p) == ckeyid && is_zero(p, len),
	       "CPU key: keyed (KeyID %d), the range reads zeros", ckeyid);
	fill(p, len, 5);
	tap_ok(holds(p, len, 5), "CPU key: data round-trips");
	tap_ok(lab_physread(pfn_of(p) * PAGE, ct, sizeof(ct)) == 0 &&
	       memcmp(ct, p, sizeof(ct)) != 0,
	       "CPU key: the page at KeyID 0 is ciphertext");
	users_are(ckey, 1 + 1 + 2, "CPU key users: key + 1 VMA + 2 pages");
	unmap(p, len);
	users_are(ckey, 1, "CPU key users: back to 1 after munmap");
}

/* Errors: each fails, and nothing changes */

static char *victim;		/* 2 pages keyed with ckey, pattern 6 */
#define VICTIM_LEN	(2 * PAGE)

static bool victim_intact(void)
{
	struct vma v;

	return vma_at(victim, &v) && v.keyid == ckeyid &&
	       v.start == (uintptr_t)victim &&
	       v.end == (uintptr_t)victim + VICTIM_LEN &&
	       !strcmp(v.perms, "rw-p") && holds(victim, VICTIM_LEN, 6);
}

static void expect_error(const char *what, void *addr, size_t len,
			 unsigned long prot, key_serial_t key, int want,
			 int or_want)
{
	int u = users(ukey), c = users(ckey), e;
	long r;

	errno = 0;
	r = encrypt_mprotect(addr, len, prot, key);
	e = errno;
	tap_ok(r == -1 && (e == want || e == or_want) && victim_intact() &&
	       wait_users(ukey, u) == u && wait_users(ckey, c) == c,
	       "error: %s: %s%s%s, nothing changes (%ld, %s)", what,
	       ename(want), or_want ? " or " : "",
	       or_want ? ename(or_want) : "", r, ename(e));
}

static key_serial_t unused_serial(void)
{
	key_serial_t s = 0x7ffffff0;

	while (keyctl_describe(s, NULL, 0) >= 0 || errno != ENOKEY)
		s--;
	return s;
}

/* Write a page-sized file in /tmp, map it private */
static char *map_file(uint64_t seed)
{
	static uint64_t buf[PAGE / 8];
	int fd = open("/tmp/keyed-file", O_RDWR | O_CREAT | O_TRUNC, 0600);
	char *p;

	fill(buf, PAGE, seed);
	if (fd < 0 || write(fd, buf, PAGE) != PAGE) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p = mmap(NULL, PAGE, RW, MAP_PRIVATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static void test_errors(void)
{
	key_serial_t revoked, nosearch, user_type;
	char *a, *h, *f;
	int u, e;
	long r;
	struct vma v;

	victim = map_keyed(VICTIM_LEN, ckey);
	if (!victim) {
		tap_ok(false, "errors: key the victim region");
		return;
	}
	fill(victim, VICTIM_LEN, 6);

	expect_error("addr not page aligned", victim + 1, PAGE, RW, ukey,
		     EINVAL, 0);
	expect_error("unknown prot bit 0x40", victim, VICTIM_LEN, RW | 0x40,
		     ukey, EINVAL, 0);
	expect_error("PROT_GROWSDOWN", victim, VICTIM_LEN, RW | PROT_GROWSDOWN,
		     ukey, EINVAL, 0);
	expect_error("PROT_GROWSUP", victim, VICTIM_LEN, RW | PROT_GROWSUP,
		     ukey, EINVAL, 0);
	expect_error("addr + len wraps around", victim, -PAGE, RW, ukey,
		     ENOMEM, 0);
	expect_error("a serial that is no key", victim, VICTIM_LEN, RW,
		     unused_serial(), ENOKEY, 0);

	revoked = add_mktme("keyed-revoked",
			    "type=no-encrypt algorithm=aes-xts-128");
	keyctl_revoke(revoked);
	expect_error("a revoked mktme key", victim, VICTIM_LEN, RW, revoked,
		     EKEYREVOKED, 0);

	/* Search permission nowhere (so not possessed either) */
	nosearch = add_mktme("keyed-nosearch",
			     "type=cpu algorithm=aes-xts-128");
	keyctl_setperm(nosearch, KEY_POS_VIEW | KEY_POS_SETATTR |
		       KEY_USR_VIEW | KEY_USR_SETATTR);
	expect_error("an mktme key without search permission", victim,
		     VICTIM_LEN, RW, nosearch, EACCES, 0);
	keyctl_revoke(nosearch);

	user_type = add_key("user", "keyed-user-type", "x", 1,
			    KEY_SPEC_PROCESS_KEYRING);
	expect_error("a key of type \"user\"", victim, VICTIM_LEN, RW,
		     user_type, EINVAL, ENOKEY);
	keyctl_invalidate(user_type);

	/* A hole: [page][hole][page] */
	h = map_anon(3 * PAGE);
	munmap(h + PAGE, PAGE);
	fill(h, PAGE, 7);
	fill(h + 2 * PAGE, PAGE, 8);
	u = users(ukey);
	errno = 0;
	r = encrypt_mprotect(h, 3 * PAGE, RW, ukey);
	e = errno;
	tap_ok(r == -1 && e == ENOMEM && keyid_at(h) == 0 &&
	       keyid_at(h + 2 * PAGE) == 0 && holds(h, PAGE, 7) &&
	       holds(h + 2 * PAGE, PAGE, 8) && wait_users(ukey, u) == u,
	       "error: a hole in the range: ENOMEM, both sides unchanged "
	       "(%ld, %s)", r, ename(e));
	munmap(h - PAGE, 2 * PAGE);
	munmap(h + 2 * PAGE, 2 * PAGE);

	/* MAP_SHARED anonymous */
	a = mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (a != MAP_FAILED) {
		fill(a, PAGE, 9);
		errno = 0;
		r = encrypt_mprotect(a, PAGE, RW, ukey);
		e = errno;
		tap_ok(r == -1 && e == EINVAL && keyid_at(a) == 0 &&
		       holds(a, PAGE, 9) && wait_users(ukey, u) == u,
		       "error: a MAP_SHARED anonymous mapping: EINVAL, "
		       "unchanged (%ld, %s)", r, ename(e));
		munmap(a, PAGE);
	} else {
		tap_ok(false, "error: a MAP_SHARED anonymous mapping: %s",
		       strerror(errno));
	}

	/* A private file mapping (tmpfs or ramfs) */
	f = map_file(10);
	if (f) {
		errno = 0;
		r = encrypt_mprotect(f, PAGE, RW, ukey);
		e = errno;
		tap_ok(r == -1 && e == EINVAL && keyid_at(f) == 0 &&
		       holds(f, PAGE, 10) && wait_users(ukey, u) == u,
		       "error: a MAP_PRIVATE file mapping: EINVAL, unchanged "
		       "(%ld, %s)", r, ename(e));
		munmap(f, PAGE);
	} else {
		tap_ok(false, "error: map a file in /tmp: %s", strerror(errno));
	}
	unlink("/tmp/keyed-file");

	/* [private anonymous][shared anonymous]: the first is not keyed */
	a = map_anon(2 * PAGE);
	fill(a, PAGE, 11);
	mmap(a + PAGE, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	errno = 0;
	r = encrypt_mprotect(a, 2 * PAGE, RW, ukey);
	e = errno;
	tap_ok(r == -1 && e == EINVAL && vma_at(a, &v) && v.keyid == 0 &&
	       v.end == (uintptr_t)a + PAGE && holds(a, PAGE, 11) &&
	       wait_users(ukey, u) == u,
	       "error: [private VMA][shared VMA]: EINVAL, the private VMA keeps "
	       "its contents, extent and KeyID 0 (%ld, %s)", r, ename(e));
	unmap(a, 2 * PAGE);

	/* [keyed][shared anonymous] back to KeyID 0: the keyed one stays */
	a = map_anon(2 * PAGE);
	encrypt_mprotect(a, PAGE, RW, ukey);
	fill(a, PAGE, 12);
	mmap(a + PAGE, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	u = users(ukey);
	errno = 0;
	r = encrypt_mprotect(a, 2 * PAGE, RW, -1);
	e = errno;
	tap_ok(r == -1 && e == EINVAL && vma_at(a, &v) && v.keyid == ukeyid &&
	       v.end == (uintptr_t)a + PAGE && holds(a, PAGE, 12) &&
	       wait_users(ukey, u) == u,
	       "error: [keyed VMA][shared VMA] to serial -1: EINVAL, the keyed "
	       "VMA keeps its contents and KeyID (%ld, %s)", r, ename(e));
	unmap(a, 2 * PAGE);

	tap_ok(victim_intact(), "errors: the victim region survived them all");
	unmap(victim, VICTIM_LEN);
	users_are(ukey, 1, "errors: user key users back to 1, no reference "
		  "leaked");
	users_are(ckey, 1, "errors: CPU key users back to 1");
}

/* VMA merging: never across KeyIDs */

static void test_merge(void)
{
	char *r = map_anon(3 * PAGE), *t;
	long ret;

	fill(r, PAGE, 13);
	fill(r + 2 * PAGE, PAGE, 15);
	ret = encrypt_mprotect(r + PAGE, PAGE, RW, ukey);
	fill(r + PAGE, PAGE, 14);
	tap_ok(ret == 0 && vmas_in(r, 3 * PAGE) == 3 && keyid_at(r) == 0 &&
	       keyid_at(r + PAGE) == ukeyid && keyid_at(r + 2 * PAGE) == 0,
	       "merge: keying the middle of 3 pages splits them into 3 VMAs "
	       "(KeyID 0, %d, 0; %d VMAs)", ukeyid, vmas_in(r, 3 * PAGE));
	mprotect(r + PAGE, PAGE, PROT_READ);
	mprotect(r + PAGE, PAGE, RW);
	tap_ok(vmas_in(r, 3 * PAGE) == 3 && keyid_at(r + PAGE) == ukeyid &&
	       holds(r + PAGE, PAGE, 14),
	       "merge: mprotect() of the keyed page to PROT_READ and back keeps "
	       "3 VMAs, its KeyID and contents");
	mprotect(r, 3 * PAGE, PROT_READ);
	mprotect(r, 3 * PAGE, RW);
	tap_ok(vmas_in(r, 3 * PAGE) == 3 && keyid_at(r) == 0 &&
	       keyid_at(r + PAGE) == ukeyid && keyid_at(r + 2 * PAGE) == 0 &&
	       holds(r, PAGE, 13) && holds(r + PAGE, PAGE, 14) &&
	       holds(r + 2 * PAGE, PAGE, 15),
	       "merge: mprotect() of all 3 pages to PROT_READ and back keeps 3 "
	       "VMAs, the KeyIDs and contents (%d VMAs)", vmas_in(r, 3 * PAGE));
	unmap(r, 3 * PAGE);

	/* Two keys side by side, same flags */
	t = map_anon(2 * PAGE);
	encrypt_mprotect(t, PAGE, RW, ukey);
	encrypt_mprotect(t + PAGE, PAGE, RW, ckey);
	fill(t, 2 * PAGE, 16);
	mprotect(t, 2 * PAGE, PROT_READ);
	mprotect(t, 2 * PAGE, RW);
	tap_ok(vmas_in(t, 2 * PAGE) == 2 && keyid_at(t) == ukeyid &&
	       keyid_at(t + PAGE) == ckeyid && holds(t, 2 * PAGE, 16),
	       "merge: adjacent VMAs of two keys stay apart through mprotect()");
	unmap(t, 2 * PAGE);
	users_are(ukey, 1, "merge: user key users back to 1");
	users_are(ckey, 1, "merge: CPU key users back to 1");
}

/* KeyID references across mprotect splits, munmap of parts, mremap */

static void test_refcounts(void)
{
	char *m = map_keyed(4 * PAGE, ukey), *t;
	int want;

	if (!m) {
		tap_ok(false, "refcounts: key 4 pages");
		return;
	}
	users_are(ukey, 1 + 1, "users: key + 1 keyed VMA, no page yet");
	errno = 0;
	tap_ok(madvise(m, 4 * PAGE, MADV_POPULATE_WRITE) == 0 &&
	       is_zero(m, 4 * PAGE),
	       "MADV_POPULATE_WRITE faults keyed pages in, zeroed (%s)",
	       ename(errno));
	users_are(ukey, 1 + 1 + 4, "users: key + 1 VMA + 4 populated pages");
	fill(m, 4 * PAGE, 17);
	users_are(ukey, 1 + 1 + 4, "users: key + 1 VMA + 4 pages");
	mprotect(m + PAGE, PAGE, PROT_READ);
	tap_ok(vmas_in(m, 4 * PAGE) == 3, "mprotect() of page 1 splits the "
	       "keyed VMA in 3");
	users_are(ukey, 1 + 3 + 4, "users: mprotect() split: key + 3 VMAs + "
		  "4 pages");
	mprotect(m + PAGE, PAGE, RW);
	want = users_expected(ukeyid);
	users_are(ukey, want, "users: mprotect() back (%d VMAs): key + VMAs "
		  "+ 4 pages", vmas_in(m, 4 * PAGE));
	tap_ok(holds(m, 4 * PAGE, 17) && keyid_at(m) == ukeyid,
	       "mprotect: contents and KeyID survive PROT_READ and back");
	munmap(m + PAGE, 2 * PAGE);
	users_are(ukey, 1 + 2 + 2, "users: munmap() of the middle 2 pages: "
		  "key + 2 VMAs + 2 pages");
	tap_ok(holds(m, PAGE, 17) && holds_at(m, 3 * PAGE, PAGE, 17) &&
	       keyid_at(m) == ukeyid && keyid_at(m + 3 * PAGE) == ukeyid,
	       "munmap: the remaining keyed pages are intact");
	munmap(m - PAGE, 2 * PAGE);
	munmap(m + 3 * PAGE, 2 * PAGE);
	users_are(ukey, 1, "users: back to 1 after munmap() of all keyed "
		  "memory");

	/* mremap to a new address */
	m = map_keyed(4 * PAGE, ukey);
	t = map_anon(4 * PAGE);
	if (!m) {
		tap_ok(false, "mremap: key 4 pages");
		return;
	}
	fill(m, 4 * PAGE, 18);
	tap_ok(mremap(m, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
		      t) == t, "mremap: MREMAP_MAYMOVE|MREMAP_FIXED moves the "
	       "keyed VMA");
	tap_ok(keyid_at(t) == ukeyid && holds(t, 4 * PAGE, 18),
	       "mremap: contents and KeyID at the new address");
	users_are(ukey, 1 + 1 + 4, "users: unchanged by mremap(): key + 1 "
		  "VMA + 4 pages");
	unmap(m, 4 * PAGE);
	unmap(t, 4 * PAGE);
	users_are(ukey, 1, "users: back to 1 after munmap() of the moved VMA");
}

/* fork(): COW of keyed pages */

static void test_fork(void)
{
	const size_t len = 4 * PAGE;
	char *f = map_keyed(len, ukey), go = 0;
	int c2p[2], p2c[2], status, bits;
	struct vma cv = { .keyid = -2 };
	pid_t pid;

	if (!f || pipe(c2p) || pipe(p2c)) {
		tap_ok(false, "fork: set-up");
		return;
	}
	fill(f, len, 19);
	users_are(ukey, 1 + 1 + 4, "fork: before: key + 1 VMA + 4 pages");
	pid = fork();
	if (pid == 0) {
		bool rest;

		bits = holds(f, len, 19);
		/* Write 16 bytes of page 0: a COW copy */
		memset(f, 0x5a, 16);
		rest = holds_at(f, 16, len - 16, 19);
		bits |= rest << 1;
		if (write(c2p[1], "w", 1) != 1 || read(p2c[0], &go, 1) != 1)
			_exit(100);
		/* The parent wrote page 1 meanwhile: not here */
		bits |= holds_at(f, PAGE, PAGE, 19) << 2;
		_exit(bits);
	}
	if (read(c2p[0], &go, 1) != 1)
		go = 0;
	vma_of(pid, f, &cv);
	tap_ok(cv.keyid == ukeyid, "fork: the child's /proc/PID/smaps shows "
	       "KeyID %d on the inherited VMA (%d)", ukeyid, cv.keyid);
	tap_ok(go == 'w' && ((uint64_t *)f)[0] == pattern(19, 0) &&
	       holds(f, len, 19),
	       "fork: the child's write is not seen by the parent");
	users_are(ukey, 1 + 2 + 4 + 1, "fork: key + 2 VMAs + 4 shared pages "
		  "+ the child's COW copy");
	fill(f + PAGE, PAGE, 21);	/* another COW copy, the parent's */
	if (write(p2c[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	bits = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	tap_ok(bits >= 0 && bits < 100 && (bits & 1),
	       "fork: the child reads the parent's keyed data (status %#x)",
	       status);
	tap_ok(bits >= 0 && bits < 100 && (bits & 2),
	       "fork: the child's COW copy keeps the rest of the page");
	tap_ok(bits >= 0 && bits < 100 && (bits & 4) &&
	       holds(f + PAGE, PAGE, 21),
	       "fork: the parent's write is not seen by the child");
	users_are(ukey, 1 + 1 + 4, "fork: after the child's exit: key + 1 "
		  "VMA + 4 pages");
	close(c2p[0]);
	close(c2p[1]);
	close(p2c[0]);
	close(p2c[1]);
	unmap(f, len);
	users_are(ukey, 1, "fork: users back to 1 after munmap()");
}

/* The kernel reading and writing keyed memory */

static void test_proc_mem_ptrace(char *k)
{
	static const char msg[] = "written through /proc/self/mem";
	uint64_t buf[PAGE / 8], poke = 0x1122334455667788ull;
	int fd = open("/proc/self/mem", O_RDWR), status;
	long w;
	pid_t pid;

	tap_ok(fd >= 0 && pread(fd, buf, PAGE, (uintptr_t)k) == PAGE &&
	       holds(buf, PAGE, 22),
	       "/proc/self/mem reads keyed memory as plaintext");
	tap_ok(fd >= 0 &&
	       pwrite(fd, msg, sizeof(msg), (uintptr_t)k + PAGE + 8) ==
	       sizeof(msg) && !memcmp(k + PAGE + 8, msg, sizeof(msg)),
	       "/proc/self/mem writes keyed memory (the mapping reads it)");
	if (fd >= 0)
		close(fd);

	pid = fork();
	if (pid == 0) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		_exit(*(volatile uint64_t *)(k + 2 * PAGE + 8) == poke ? 0 : 1);
	}
	waitpid(pid, &status, WUNTRACED);
	errno = 0;
	w = ptrace(PTRACE_PEEKDATA, pid, k + 2 * PAGE, NULL);
	tap_ok(errno == 0 && (uint64_t)w == pattern(22, 2 * PAGE / 8),
	       "ptrace: PEEKDATA reads a child's keyed memory as plaintext");
	w = ptrace(PTRACE_POKEDATA, pid, k + 2 * PAGE + 8, (void *)poke);
	if (ptrace(PTRACE_CONT, pid, NULL, NULL))
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	tap_ok(w == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "ptrace: POKEDATA writes a child's keyed memory (the child "
	       "reads it)");
}

static void test_pipes(char *k)
{
	uint64_t buf[PAGE / 8];
	struct iovec iov = { k + 3 * PAGE, PAGE }, local = { buf, PAGE };
	int pfd[2], e;
	ssize_t n;

	if (pipe(pfd)) {
		tap_ok(false, "pipe: %s", strerror(errno));
		return;
	}
	tap_ok(write(pfd[1], k, PAGE) == PAGE &&
	       read(pfd[0], buf, PAGE) == PAGE && holds(buf, PAGE, 22),
	       "write(2) from keyed memory carries plaintext (copy_from_user)");
	fill(buf, PAGE, 23);
	tap_ok(write(pfd[1], buf, PAGE) == PAGE &&
	       read(pfd[0], k + 3 * PAGE, PAGE) == PAGE &&
	       holds(k + 3 * PAGE, PAGE, 23),
	       "read(2) into keyed memory stores plaintext (copy_to_user)");

	/*
	 * vmsplice() and process_vm_readv() take the pages themselves, to
	 * read them through KeyID 0: refused, never ciphertext.
	 */
	memset(buf, 0, PAGE);
	errno = 0;
	n = vmsplice(pfd[1], &iov, 1, 0);
	e = errno;
	if (n < 0 && e == ENOSYS) {
		tap_skip("no vmsplice()", "vmsplice of keyed memory");
	} else {
		if (n > 0)
			tap_diag("vmsplice() took keyed memory: %zd bytes, %s",
				 n, read(pfd[0], buf, PAGE) == n &&
				 holds(buf, n, 23) ? "plaintext" : "ciphertext");
		tap_ok(n == -1 && e == EFAULT, "vmsplice of keyed memory into a "
		       "pipe is refused: EFAULT (%zd, %s)", n, ename(e));
	}
	close(pfd[0]);
	close(pfd[1]);

	memset(buf, 0, PAGE);
	errno = 0;
	n = process_vm_readv(getpid(), &local, 1, &iov, 1, 0);
	e = errno;
	if (n < 0 && e == ENOSYS) {
		tap_skip("no CONFIG_CROSS_MEMORY_ATTACH",
			 "process_vm_readv from keyed memory");
	} else {
		if (n > 0)
			tap_diag("process_vm_readv() read keyed memory: %zd "
				 "bytes, %s", n, holds(buf, n, 23) ?
				 "plaintext" : "ciphertext");
		tap_ok(n == -1 && e == EFAULT, "process_vm_readv from keyed "
		       "memory is refused: EFAULT (%zd, %s)", n, ename(e));
	}
}

/* Direct I/O would DMA the ciphertext: refused */
static void test_odirect(char *k)
{
	int fd = open(RAMDISK, O_RDWR | O_DIRECT);
	char *plain = map_anon(PAGE);
	ssize_t n;
	int e;

	if (fd < 0) {
		tap_skip("no " RAMDISK, "O_DIRECT read into keyed memory");
		tap_skip("no " RAMDISK, "O_DIRECT write from keyed memory");
		unmap(plain, PAGE);
		return;
	}
	if (pread(fd, plain, PAGE, 0) != PAGE) {
		tap_skip("O_DIRECT fails on unkeyed memory too",
			 "O_DIRECT read into keyed memory");
		tap_skip("O_DIRECT fails on unkeyed memory too",
			 "O_DIRECT write from keyed memory");
	} else {
		fill(k, PAGE, 24);
		errno = 0;
		n = pread(fd, k, PAGE, 0);
		e = errno;
		tap_ok(n == -1 && e == EFAULT && holds(k, PAGE, 24),
		       "O_DIRECT read of " RAMDISK " into keyed memory is refused "
		       "(EFAULT), the buffer untouched (%zd, %s)", n, ename(e));
		errno = 0;
		n = pwrite(fd, k, PAGE, 0);
		e = errno;
		tap_ok(n == -1 && e == EFAULT,
		       "O_DIRECT write to " RAMDISK " from keyed memory is "
		       "refused (EFAULT) (%zd, %s)", n, ename(e));
	}
	close(fd);
	unmap(plain, PAGE);
}

static void test_futex(char *k)
{
	uint32_t *word = (uint32_t *)(k + 100 * sizeof(uint32_t));
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	long r;

	*word = 0x4b455944;
	errno = 0;
	r = syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
	tap_ok(r == 0, "futex: shared FUTEX_WAKE on keyed memory returns 0 "
	       "(%ld, %s)", r, ename(errno));
	errno = 0;
	r = syscall(SYS_futex, word, FUTEX_WAIT, 0x4b455944 + 1, &ts, NULL, 0);
	tap_ok(r == -1 && errno == EAGAIN, "futex: shared FUTEX_WAIT reads the "
	       "keyed word (EAGAIN on a mismatch: %s)", ename(errno));
	errno = 0;
	r = syscall(SYS_futex, word, FUTEX_WAIT, 0x4b455944, &ts, NULL, 0);
	tap_ok(r == -1 && errno == ETIMEDOUT, "futex: shared FUTEX_WAIT on the "
	       "keyed word sleeps until its timeout (%s)", ename(errno));
}

static void test_kernel_access(void)
{
	const size_t len = 4 * PAGE;
	char *k = map_keyed(len, ukey);

	if (!k) {
		tap_ok(false, "kernel access: key 4 pages");
		return;
	}
	fill(k, len, 22);
	test_proc_mem_ptrace(k);
	test_pipes(k);
	test_odirect(k);
	test_futex(k);
	unmap(k, len);
	users_are(ukey, 1, "kernel access: users back to 1 (no page kept "
		  "pinned)");
}

/* KSM and THP */

/*
 * KSM must never merge keyed pages: MADV_MERGEABLE on a keyed VMA fails
 * with EINVAL, or is ignored as on other VMAs KSM cannot handle; either
 * way the VMA does not become mergeable ("mg" in VmFlags).
 */
static void test_ksm(void)
{
	char *u = map_anon(PAGE), *k = map_keyed(2 * PAGE, ukey);
	struct vma v = { .mergeable = true };
	int r, e;

	if (madvise(u, PAGE, MADV_MERGEABLE) || !vma_at(u, &v) ||
	    !v.mergeable) {
		tap_skip("no KSM (MADV_MERGEABLE does nothing on plain memory)",
			 "MADV_MERGEABLE on a keyed VMA");
	} else if (k) {
		errno = 0;
		r = madvise(k, 2 * PAGE, MADV_MERGEABLE);
		e = errno;
		v.mergeable = true;
		vma_at(k, &v);
		tap_ok(((r == -1 && e == EINVAL) || r == 0) && !v.mergeable &&
		       v.keyid == ukeyid,
		       "KSM: MADV_MERGEABLE on a keyed VMA fails (EINVAL) or is "
		       "ignored; never \"mg\" in VmFlags (%d, %s)", r,
		       r ? ename(e) : "ignored");
	}
	unmap(u, PAGE);
	if (k)
		unmap(k, 2 * PAGE);
}

/* The mode in brackets: "always [madvise] never" */
static char *thp_mode(const char *path)
{
	static char mode[32];
	char *s = read_text(path), *b = s ? strchr(s, '[') : NULL;

	mode[0] = 0;
	if (b)
		sscanf(b + 1, "%31[^]]", mode);
	free(s);
	return b ? mode : NULL;
}

static void test_thp(void)
{
	const size_t len = 4 * MiB;
	char old[32], old_sleep[32], *ctl, *k, *s;
	struct vma v = { .keyid = -2 }, cv = { 0 };
	int r, m;

	if (!thp_mode(THP "enabled")) {
		tap_skip("no CONFIG_TRANSPARENT_HUGEPAGE", "THP: no huge pages "
			 "for keyed memory");
		tap_skip("no CONFIG_TRANSPARENT_HUGEPAGE", "THP: khugepaged");
		return;
	}
	snprintf(old, sizeof(old), "%s", thp_mode(THP "enabled"));
	lab_write_file(THP "enabled", "always");

	/* Control: the same shape unkeyed */
	ctl = map_anon_aligned(len, len);
	madvise(ctl, len, MADV_HUGEPAGE);
	ctl[0] = 1;
	ctl[2 * MiB] = 1;
	vma_at(ctl, &cv);
	tap_diag("THP control: an unkeyed 4 MiB region has AnonHugePages %ld kB",
		 cv.anon_huge);

	k = map_anon_aligned(len, len);
	r = encrypt_mprotect(k, len, RW, ukey);
	m = madvise(k, len, MADV_HUGEPAGE);
	tap_diag("madvise(MADV_HUGEPAGE) on the keyed region: %d (%s)", m,
		 m ? ename(errno) : "ok");
	fill(k, PAGE, 25);
	fill(k + 2 * MiB, PAGE, 26);
	vma_at(k, &v);
	tap_ok(r == 0 && v.keyid == ukeyid && v.anon_huge == 0 && v.rss == 8,
	       "THP: a keyed 4 MiB-aligned region gets 4 KiB pages only, "
	       "enabled=always and MADV_HUGEPAGE (AnonHugePages %ld kB, "
	       "Rss %ld kB)", v.anon_huge, v.rss);
	users_are(ukey, 1 + 1 + 2, "THP: key + 1 VMA + 2 small pages");

	/* Give khugepaged a few quick passes */
	s = read_text(THP "khugepaged/scan_sleep_millisecs");
	snprintf(old_sleep, sizeof(old_sleep), "%s", s ? s : "10000");
	free(s);
	lab_write_file(THP "khugepaged/scan_sleep_millisecs", "100");
	sleep(3);
	vma_at(k, &v);
	tap_ok(v.anon_huge == 0 && holds(k, PAGE, 25) &&
	       holds(k + 2 * MiB, PAGE, 26),
	       "THP: khugepaged leaves keyed memory alone (AnonHugePages %ld "
	       "kB), contents intact", v.anon_huge);
	vma_at(ctl, &cv);
	tap_diag("THP control after khugepaged: AnonHugePages %ld kB",
		 cv.anon_huge);
	lab_write_file(THP "khugepaged/scan_sleep_millisecs", old_sleep);
	lab_write_file(THP "enabled", old);
	unmap(ctl, len);
	unmap(k, len);
	users_are(ukey, 1, "THP: users back to 1");
}

/* Unevictable and unmovable */

/* Unevictable: in kB, with every CPU's vmstat deltas folded in first */
static long unevictable_kb(void)
{
	lab_write_file("/proc/sys/vm/stat_refresh", "1");
	return meminfo_kb("Unevictable");
}

static void test_unevictable_compaction(void)
{
	const size_t n = 256, len = n * PAGE;
	uint64_t *pfn = calloc(n, sizeof(*pfn));
	uint64_t *cpfn = calloc(n, sizeof(*cpfn));
	long before = unevictable_kb(), grew = 0;
	char *k, *ctl = map_anon(len);
	bool compact = access(COMPACT, W_OK) == 0;
	struct vma v = { 0 };
	size_t moved = 0, ctl_moved = 0, absent = 0;

	k = map_keyed(len, ukey);
	if (!k || !pfn || !cpfn) {
		tap_ok(false, "unevictable: key %zu pages", n);
		return;
	}
	fill(k, len, 27);
	fill(ctl, len, 28);
	for (size_t i = 0; i < n; i++) {
		pfn[i] = pfn_of(k + i * PAGE);
		cpfn[i] = pfn_of(ctl + i * PAGE);
	}
	drain_lru();		/* to the LRU lists, and so to Unevictable */
	if (compact)
		lab_write_file(COMPACT, "1");
	vma_at(k, &v);
	for (int i = 0; i < 20; i++) {
		grew = unevictable_kb() - before;
		if (grew >= v.rss)
			break;
		usleep(100000);
	}
	tap_ok(v.rss == (long)(len / 1024) && grew >= v.rss,
	       "unevictable: /proc/meminfo Unevictable grows by the keyed "
	       "resident size (%ld kB for Rss %ld kB)", grew, v.rss);
	if (!compact) {
		tap_skip("no CONFIG_COMPACTION", "compaction: keyed pages stay");
		tap_skip("no CONFIG_COMPACTION", "compaction: keyed contents");
	} else {
		for (size_t i = 0; i < n; i++) {
			uint64_t now = pfn_of(k + i * PAGE);

			absent += !pfn[i] || !now;
			moved += now != pfn[i];
			ctl_moved += pfn_of(ctl + i * PAGE) != cpfn[i];
		}
		tap_diag("compaction moved %zu of %zu unkeyed control pages",
			 ctl_moved, n);
		tap_ok(moved == 0 && absent == 0,
		       "compaction: no keyed page moved (pagemap PFNs of %zu "
		       "pages unchanged; %zu moved)", n, moved);
		tap_ok(holds(k, len, 27), "compaction: keyed contents survive");
	}
	unmap(k, len);
	unmap(ctl, len);
	free(pfn);
	free(cpfn);
	users_are(ukey, 1, "unevictable: users back to 1");
}

/* serial -1: back to KeyID 0 */

static void test_back_home(void)
{
	const size_t len = 4 * PAGE;
	char *k = map_keyed(len, ukey);
	uint8_t ram[64];
	long r;

	if (!k) {
		tap_ok(false, "serial -1: key 4 pages");
		return;
	}
	fill(k, len, 29);
	users_are(ukey, 1 + 1 + 4, "serial -1: before: key + 1 VMA + 4 pages");
	r = encrypt_mprotect(k, len, RW, -1);
	tap_ok(r == 0 && keyid_at(k) == 0, "serial -1: the range returns to "
	       "KeyID 0 (smaps KeyID %d)", keyid_at(k));
	tap_ok(is_zero(k, len), "serial -1: contents are discarded (zeros)");
	users_are(ukey, 1, "serial -1: users drops back to 1");
	fill(k, len, 30);
	tap_ok(holds(k, len, 30) &&
	       lab_physread(pfn_of(k) * PAGE, ram, sizeof(ram)) == 0 &&
	       !memcmp(ram, k, sizeof(ram)),
	       "serial -1: plain memory again (RAM holds the plaintext)");
	unmap(k, len);
}

/* Revoking a key leaves the memory keyed with it working */

static void test_revoke(void)
{
	long in_use = read_long(SYSFS "keyids_in_use");
	key_serial_t key = add_mktme("keyed-revoke",
				     "type=cpu algorithm=aes-xts-128");
	char *k = key > 0 ? map_keyed(2 * PAGE, key) : NULL;

	if (!k) {
		tap_ok(false, "revoke: a CPU key and 2 pages keyed with it");
		return;
	}
	fill(k, 2 * PAGE, 31);
	keyctl_revoke(key);
	usleep(100000);
	fill(k + PAGE, PAGE, 32);
	tap_ok(holds(k, PAGE, 31) && holds(k + PAGE, PAGE, 32),
	       "revoke: memory keyed with a revoked key keeps working");
	tap_ok(read_long(SYSFS "keyids_in_use") == in_use + 1,
	       "revoke: its KeyID stays reserved while memory uses it");
	unmap(k, 2 * PAGE);
	tap_ok(wait_in_use(in_use), "revoke: the KeyID is released after "
	       "munmap()");
}

/* Memory pressure with swap on a RAM disk */

#define PRESSURE_CHUNK	(4 * MiB)
#define SWAPPED_KB	(8 * 1024L)

static void __attribute__((noreturn)) pressure_child(int wfd, long swapfree0)
{
	long limit = meminfo_kb("MemAvailable") + meminfo_kb("SwapFree") / 2;
	long done = 0;
	char verdict = 'L';

	lab_write_file("/proc/self/oom_score_adj", "1000");
	while (done < limit) {
		char *c = mmap(NULL, PRESSURE_CHUNK, RW, MAP_PRIVATE |
			       MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (c == MAP_FAILED) {
			verdict = 'M';
			break;
		}
		madvise(c, PRESSURE_CHUNK, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < PRESSURE_CHUNK; i += PAGE)
			c[i] = 1;
		done += PRESSURE_CHUNK / 1024;
		if (swapfree0 - meminfo_kb("SwapFree") >= SWAPPED_KB) {
			verdict = 'S';
			break;
		}
	}
	if (write(wfd, &verdict, 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void test_pressure(void)
{
	const size_t len = MiB;
	long swapfree0, swapped;
	char *k, verdict = 0;
	struct vma v = { .keyid = -2, .swap = -1 };
	int pfd[2], r, status;
	pid_t pid;

	if (access(RAMDISK, F_OK) || access("/proc/swaps", F_OK)) {
		tap_skip("no " RAMDISK " or no CONFIG_SWAP", "memory pressure");
		return;
	}
	r = system("mkswap " RAMDISK " >/dev/null && swapon " RAMDISK);
	if (!tap_ok(r == 0 && meminfo_kb("SwapTotal") > 0,
		    "swap: mkswap and swapon " RAMDISK " (%ld kB)",
		    meminfo_kb("SwapTotal")))
		return;
	lab_write_file("/proc/self/oom_score_adj", "-1000");
	k = map_keyed(len, ukey);
	if (!k || pipe(pfd)) {
		tap_ok(false, "pressure: key 1 MiB");
		return;
	}
	fill(k, len, 33);
	users_are(ukey, 1 + 1 + 256, "pressure: before: key + 1 VMA + 256 "
		  "pages");
	swapfree0 = meminfo_kb("SwapFree");
	tap_diag("pressure: MemAvailable %ld kB, SwapFree %ld kB",
		 meminfo_kb("MemAvailable"), swapfree0);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		unmap(k, len);	/* the parent's keyed memory is not ours */
		pressure_child(pfd[1], swapfree0);
	}
	close(pfd[1]);
	if (read(pfd[0], &verdict, 1) != 1)
		verdict = 0;
	swapped = swapfree0 - meminfo_kb("SwapFree");
	tap_ok(swapped > 0, "pressure: unkeyed memory went to swap (%ld kB; "
	       "the child %s)", swapped,
	       verdict == 'S' ? "swapped enough" :
	       verdict == 'L' ? "reached its limit" :
	       verdict == 'M' ? "could not mmap more" : "died");
	vma_at(k, &v);
	tap_ok(v.keyid == ukeyid && v.swap == 0 && v.rss == (long)(len / 1024),
	       "pressure: the keyed VMA stays resident: Swap: %ld kB, Rss %ld kB",
	       v.swap, v.rss);
	tap_ok(holds(k, len, 33), "pressure: keyed contents survive");
	users_are(ukey, 1 + 1 + 256, "pressure: no keyed page was freed or "
		  "swapped: key + 1 VMA + 256 pages");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(pfd[0]);
	unmap(k, len);
	users_are(ukey, 1, "pressure: users back to 1");
}

/* The end: references, KeyIDs, the checker */

static void test_end(void)
{
	uint64_t violations, conflicts;
	unsigned long long pa, rk, wk;
	const char *when = checker_all ? "over the whole run" :
			   "over the keyed page life cycle";

	users_are(ukey, 1, "end: the user key's users back to 1");
	users_are(ckey, 1, "end: the CPU key's users back to 1");
	if (checker_off) {
		tap_skip("keyed.checker=off", "checker: no read violation");
		tap_skip("keyed.checker=off", "checker: no write conflict");
		goto keys;
	}
	violations = lab_checker_count("read-violations");
	conflicts = lab_checker_count("write-conflicts");
	if (!tap_ok(violations == 0,
		    "checker: no read violation %s (query-mktme-checker "
		    "read-violations %llu)", when,
		    (unsigned long long)violations)) {
		pa = lab_checker_count("last-violation-address");
		rk = lab_checker_count("last-violation-read-keyid");
		wk = lab_checker_count("last-violation-write-keyid");
		tap_diag("last violation: PA %#llx read through KeyID %llu, "
			 "written through KeyID %llu", pa, rk, wk);
	}
	tap_ok(conflicts == 0, "checker: no write conflict %s (a line written "
	       "through two KeyIDs without a flush between: %llu)", when,
	       (unsigned long long)conflicts);
	tap_diag("checker: %llu flushes",
		 (unsigned long long)lab_checker_count("flushes"));
keys:
	keyctl_invalidate(ukey);
	keyctl_invalidate(ckey);
	tap_ok(wait_in_use(0), "end: every KeyID released (keyids_in_use 0)");
}

int main(void)
{
	tap_begin();
	if (!test_setup())
		return tap_end();
	test_checker_window();
	if (!add_cpu_key())
		return tap_end();
	test_smaps_lines();
	test_keying();
	test_ciphertext(0);
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		test_ciphertext(1);
	test_cpu_key();
	test_errors();
	test_merge();
	test_refcounts();
	test_fork();
	test_kernel_access();
	test_ksm();
	test_thp();
	test_unevictable_compaction();
	test_back_home();
	test_revoke();
	test_pressure();
	test_end();
	return tap_end();
}
