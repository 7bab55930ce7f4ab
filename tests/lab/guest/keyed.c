// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of keyed anonymous memory on the patched 6.12 kernel, booted on
 * the emulated TME-MK platform: encrypt_mprotect() (x86_64 system call 463)
 * is mprotect() that also keys private anonymous memory with the KeyID of
 * an "mktme" key (serial 0: back to KeyID 0).
 *
 * Checked, one TAP line per behaviour: the KeyID line of /proc/PID/smaps;
 * contents discarded on keying; the ciphertext in RAM (AES-XTS-128 under a
 * user key, tweak = physical address, computed on the host); keyed VMAs never
 * merging with another KeyID; the KeyID's references ("users=" in
 * /proc/keys) through mprotect splits, munmap, mremap and fork; contents
 * across fork, mremap, mprotect, compaction and memory pressure with swap;
 * kernel access (/proc/PID/mem, ptrace, pipes, futexes) and the paths that
 * must refuse keyed pages (O_DIRECT, vmsplice, process_vm_readv); no KSM,
 * no THP, no swap, no migration of keyed pages; serial 0; a key revoked
 * under keyed memory.  (Errors are keyed_errors.c's.)  The emulator's
 * alias-coherency checker watches the life cycle of keyed pages at the
 * start (the whole run with keyed.checker=all on the kernel command line:
 * see test_checker_window()) and must count no read violation.
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

#include "keyed_lib.h"

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
		write_or_fail(prove, "1");
	if (offline)
		write_or_fail(cpu1, "1");
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
	write_or_fail(THP "enabled", "always");

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
	write_or_fail(THP "khugepaged/scan_sleep_millisecs", "100");
	sleep(3);
	vma_at(k, &v);
	tap_ok(v.anon_huge == 0 && holds(k, PAGE, 25) &&
	       holds(k + 2 * MiB, PAGE, 26),
	       "THP: khugepaged leaves keyed memory alone (AnonHugePages %ld "
	       "kB), contents intact", v.anon_huge);
	vma_at(ctl, &cv);
	tap_diag("THP control after khugepaged: AnonHugePages %ld kB",
		 cv.anon_huge);
	write_or_fail(THP "khugepaged/scan_sleep_millisecs", old_sleep);
	write_or_fail(THP "enabled", old);
	unmap(ctl, len);
	unmap(k, len);
	users_are(ukey, 1, "THP: users back to 1");
}

/* Unevictable and unmovable */

/* Unevictable: in kB, with every CPU's vmstat deltas folded in first */
static long unevictable_kb(void)
{
	write_or_fail("/proc/sys/vm/stat_refresh", "1");
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
		write_or_fail(COMPACT, "1");
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

/* serial 0: back to KeyID 0 */

static void test_back_home(void)
{
	const size_t len = 4 * PAGE;
	char *k = map_keyed(len, ukey);
	uint8_t ram[64];
	long r;

	if (!k) {
		tap_ok(false, "serial 0: key 4 pages");
		return;
	}
	fill(k, len, 29);
	users_are(ukey, 1 + 1 + 4, "serial 0: before: key + 1 VMA + 4 pages");
	r = encrypt_mprotect(k, len, RW, 0);
	tap_ok(r == 0 && keyid_at(k) == 0, "serial 0: the range returns to "
	       "KeyID 0 (smaps KeyID %d)", keyid_at(k));
	tap_ok(is_zero(k, len), "serial 0: contents are discarded (zeros)");
	users_are(ukey, 1, "serial 0: users drops back to 1");
	fill(k, len, 30);
	tap_ok(holds(k, len, 30) &&
	       lab_physread(pfn_of(k) * PAGE, ram, sizeof(ram)) == 0 &&
	       !memcmp(ram, k, sizeof(ram)),
	       "serial 0: plain memory again (RAM holds the plaintext)");
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

	write_or_fail("/proc/self/oom_score_adj", "1000");
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
	write_or_fail("/proc/self/oom_score_adj", "-1000");
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
	const char *when = checker_all ? "over keyed's part of the run" :
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
