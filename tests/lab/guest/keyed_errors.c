// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of encrypt_mprotect()'s errors on the patched kernel: each
 * refusal fails the whole call with nothing changed, neither contents nor
 * KeyIDs nor the KeyID references ("users=" in /proc/keys).  Since the
 * contents of the range are discarded on success, the kernel must check
 * everything before it changes anything: bad arguments, keys, a hole, the
 * kinds of memory it refuses (shared, file, userfaultfd-registered,
 * hugetlb, memfd_secret), sealed VMAs (mseal), write-xor-execute
 * (PR_SET_MDWE, also through READ_IMPLIES_EXEC) and the data limit.
 * Soft-dirty tracking works on keyed memory, and userfaultfd refuses it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyed_lib.h"

#ifndef PR_SET_MDWE
#define PR_SET_MDWE			65
#define PR_MDWE_REFUSE_EXEC_GAIN	(1UL << 0)
#endif
#define NR_mseal		462
#define NR_memfd_secret		447

static key_serial_t ukey, ckey;	/* two keys: user AES-128, CPU AES-256 */
static int ukeyid, ckeyid;

static void test_refusals_in_child(void);

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

/* flags other than 0 */
static void expect_flags_error(void)
{
	int u = users(ukey), e;
	long r;

	errno = 0;
	r = sys_encrypt_mprotect(victim, VICTIM_LEN, RW, ukey, 1);
	e = errno;
	tap_ok(r == -1 && e == EINVAL && victim_intact() &&
	       wait_users(ukey, u) == u,
	       "error: flags 1: EINVAL, nothing changes (%ld, %s)", r, ename(e));
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
	expect_flags_error();
	expect_error("serial -1 (KEY_SPEC_THREAD_KEYRING)", victim, VICTIM_LEN,
		     RW, KEY_SPEC_THREAD_KEYRING, EINVAL, 0);
	expect_error("serial -3 (KEY_SPEC_SESSION_KEYRING)", victim,
		     VICTIM_LEN, RW, KEY_SPEC_SESSION_KEYRING, EINVAL, 0);
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
	/* Possessed, viewable and searchable, but not readable: not usable */
	keyctl_setperm(nosearch, KEY_POS_VIEW | KEY_POS_SEARCH |
		       KEY_POS_SETATTR | KEY_USR_VIEW | KEY_USR_SEARCH);
	expect_error("an mktme key the caller may find but not read", victim,
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
	r = encrypt_mprotect(a, 2 * PAGE, RW, 0);
	e = errno;
	tap_ok(r == -1 && e == EINVAL && vma_at(a, &v) && v.keyid == ukeyid &&
	       v.end == (uintptr_t)a + PAGE && holds(a, PAGE, 12) &&
	       wait_users(ukey, u) == u,
	       "error: [keyed VMA][shared VMA] to serial 0: EINVAL, the keyed "
	       "VMA keeps its contents and KeyID (%ld, %s)", r, ename(e));
	unmap(a, 2 * PAGE);

	test_refusals_in_child();
	tap_ok(victim_intact(), "errors: the victim region survived them all");
	unmap(victim, VICTIM_LEN);
	users_are(ukey, 1, "errors: user key users back to 1, no reference "
		  "leaked");
	users_are(ckey, 1, "errors: CPU key users back to 1");
}


/*
 * Refusals tested in a child, each on a region of its own: what they set
 * up cannot be undone (a seal, PR_SET_MDWE, personality, a lower
 * RLIMIT_DATA) or needs a userfaultfd.  The child reports the call's
 * result and whether its contents survived.
 */
struct child_result {
	long r;
	int err;
	bool intact;
	char setup[96];		/* a set-up step that failed, or "" */
};

typedef void (*child_fn)(struct child_result *res, char *p, size_t len);

static void run_in_child(const char *what, child_fn fn, size_t len,
			 bool keyed, int want)
{
	struct child_result res = { .r = 0 };
	int fds[2], status = 0, u = users(ukey);
	pid_t pid;

	if (pipe(fds)) {
		tap_ok(false, "error: %s: pipe: %s", what, strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		char *p = map_anon(len);

		close(fds[0]);
		if (keyed && encrypt_mprotect(p, len, RW, ckey))
			snprintf(res.setup, sizeof(res.setup), "key: %s",
				 ename(errno));
		fill(p, len, 21);
		fn(&res, p, len);
		if (write(fds[1], &res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &res, sizeof(res)) != sizeof(res))
		snprintf(res.setup, sizeof(res.setup), "no report from the child");
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (res.setup[0]) {
		tap_ok(false, "error: %s: %s", what, res.setup);
		return;
	}
	tap_ok(res.r == -1 && res.err == want && res.intact &&
	       wait_users(ukey, u) == u,
	       "error: %s: %s, contents intact, no reference taken (%ld, %s)",
	       what, ename(want), res.r, ename(res.err));
}

/* Call encrypt_mprotect(p, len, prot, ukey) and record what happened */
static void call(struct child_result *res, char *p, size_t len,
		 unsigned long prot)
{
	errno = 0;
	res->r = encrypt_mprotect(p, len, prot, ukey);
	res->err = errno;
	res->intact = holds(p, len, 21);
}

static void sealed(struct child_result *res, char *p, size_t len)
{
	if (syscall(NR_mseal, p, len, 0))
		snprintf(res->setup, sizeof(res->setup), "mseal: %s",
			 ename(errno));
	call(res, p, len, RW);
}

static void mdwe_exec(struct child_result *res, char *p, size_t len)
{
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0))
		snprintf(res->setup, sizeof(res->setup), "PR_SET_MDWE: %s",
			 ename(errno));
	call(res, p, len, PROT_READ | PROT_EXEC);
}

/* READ_IMPLIES_EXEC turns PROT_READ into PROT_READ | PROT_EXEC */
static void mdwe_read_implies_exec(struct child_result *res, char *p,
				   size_t len)
{
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) ||
	    personality(READ_IMPLIES_EXEC) < 0)
		snprintf(res->setup, sizeof(res->setup),
			 "PR_SET_MDWE, READ_IMPLIES_EXEC: %s", ename(errno));
	call(res, p, len, PROT_READ);
}

/* The range becomes writable data beyond RLIMIT_DATA */
static void data_limit(struct child_result *res, char *p, size_t len)
{
	struct rlimit rl;
	long data_kb;

	if (mprotect(p, len, PROT_READ))
		snprintf(res->setup, sizeof(res->setup), "mprotect: %s",
			 ename(errno));
	data_kb = status_kb("VmData");
	rl.rlim_cur = rl.rlim_max = data_kb * 1024 + len / 2;
	if (data_kb < 0 || setrlimit(RLIMIT_DATA, &rl))
		snprintf(res->setup, sizeof(res->setup), "RLIMIT_DATA: %s",
			 ename(errno));
	call(res, p, len, RW);
}

/* Registered with userfaultfd */
static void uffd_registered(struct child_result *res, char *p, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) ||
	    ioctl(fd, UFFDIO_REGISTER, &reg))
		snprintf(res->setup, sizeof(res->setup), "userfaultfd: %s",
			 ename(errno));
	call(res, p, len, RW);
}

static void test_refusals_in_child(void)
{
	run_in_child("a sealed keyed VMA (mseal)", sealed, 2 * PAGE, true,
		     EPERM);
	run_in_child("a sealed plain VMA (mseal)", sealed, 2 * PAGE, false,
		     EPERM);
	run_in_child("PROT_EXEC under PR_SET_MDWE", mdwe_exec, 2 * PAGE, true,
		     EACCES);
	run_in_child("PROT_READ with READ_IMPLIES_EXEC under PR_SET_MDWE",
		     mdwe_read_implies_exec, 2 * PAGE, true, EACCES);
	run_in_child("beyond RLIMIT_DATA", data_limit, 16 * PAGE, false,
		     ENOMEM);
	run_in_child("a userfaultfd-registered range", uffd_registered,
		     2 * PAGE, false, EINVAL);
}

/* Memory of kinds that are never keyed */
static void test_kinds(void)
{
	const char *nr = "/proc/sys/vm/nr_hugepages";
	int fd, e, u = users(ukey);
	char *p;
	long r;

	fd = syscall(NR_memfd_secret, 0);
	p = fd >= 0 && !ftruncate(fd, PAGE) ?
	    mmap(NULL, PAGE, RW, MAP_SHARED, fd, 0) : MAP_FAILED;
	if (p != MAP_FAILED) {
		fill(p, PAGE, 22);
		errno = 0;
		r = encrypt_mprotect(p, PAGE, RW, ukey);
		e = errno;
		tap_ok(r == -1 && e == EINVAL && holds(p, PAGE, 22) &&
		       wait_users(ukey, u) == u,
		       "error: memfd_secret memory: EINVAL, unchanged (%ld, %s)",
		       r, ename(e));
		munmap(p, PAGE);
	} else {
		tap_ok(false, "memfd_secret: %s", ename(errno));
	}
	if (fd >= 0)
		close(fd);

	write_or_fail(nr, "1");
	p = mmap(NULL, 2 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		 -1, 0);
	if (p != MAP_FAILED) {
		fill(p, PAGE, 23);
		errno = 0;
		r = encrypt_mprotect(p, 2 * MiB, RW, ukey);
		e = errno;
		tap_ok(r == -1 && e == EINVAL && holds(p, PAGE, 23) &&
		       wait_users(ukey, u) == u,
		       "error: a private anonymous hugetlb mapping: EINVAL, "
		       "unchanged (%ld, %s)", r, ename(e));
		munmap(p, 2 * MiB);
	} else {
		tap_ok(false, "mmap MAP_HUGETLB: %s", ename(errno));
	}
	write_or_fail(nr, "0");
}

/* userfaultfd does not register keyed memory; soft-dirty works on it */
static void test_uffd_refuses_keyed(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	char *p = map_keyed(2 * PAGE, ukey);
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = 2 * PAGE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC), r, e;

	if (!p || fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
		tap_ok(false, "userfaultfd on keyed memory: set-up: %s",
		       ename(errno));
		goto out;
	}
	errno = 0;
	r = ioctl(fd, UFFDIO_REGISTER, &reg);
	e = errno;
	tap_ok(r == -1 && e == EINVAL,
	       "userfaultfd: UFFDIO_REGISTER of a keyed range: EINVAL (%d, %s)",
	       r, ename(e));
out:
	if (fd >= 0)
		close(fd);
	if (p)
		unmap(p, 2 * PAGE);
}

/* Bit 55 of a pagemap entry: soft-dirty */
static int soft_dirty(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return -1;
	if (pread(fd, &e, sizeof(e), (uintptr_t)addr / PAGE * sizeof(e)) !=
	    sizeof(e))
		e = 0;
	close(fd);
	return (e >> 55) & 1;
}

static void test_soft_dirty(void)
{
	char *p = map_keyed(2 * PAGE, ukey);
	int before, after, other;

	if (!p) {
		tap_ok(false, "soft-dirty: key 2 pages");
		return;
	}
	fill(p, 2 * PAGE, 24);
	write_or_fail("/proc/self/clear_refs", "4");
	before = soft_dirty(p);
	p[0] ^= 1;
	after = soft_dirty(p);
	other = soft_dirty(p + PAGE);
	p[0] ^= 1;
	tap_ok(before == 0 && after == 1 && other == 0 && holds(p, 2 * PAGE, 24),
	       "soft-dirty: cleared by clear_refs 4, set by a write to a keyed "
	       "page, not on the page left alone (%d %d %d)", before, after,
	       other);
	unmap(p, 2 * PAGE);
}

static bool test_setup(void)
{
	ukey = add_mktme("errors-user", "type=user algorithm=aes-xts-128 "
			 "key=000102030405060708090a0b0c0d0e0f "
			 "tweak=f0e1d2c3b4a5968778695a4b3c2d1e0f");
	ckey = add_mktme("errors-cpu", "type=cpu algorithm=aes-xts-256");
	ukeyid = key_field(ukey, " keyid=");
	ckeyid = key_field(ckey, " keyid=");
	/*
	 * The children below use the keys, and do not possess them (a
	 * process keyring is not inherited): read permission for our uid.
	 */
	keyctl_setperm(ukey, KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ);
	keyctl_setperm(ckey, KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ);
	return tap_ok(ukey > 0 && ckey > 0 && users(ukey) == 1 &&
		      users(ckey) == 1, "errors: a user key and a CPU key, "
		      "users=1 each");
}

int main(void)
{
	tap_begin();
	if (test_setup()) {
		test_errors();
		test_kinds();
		test_uffd_refuses_keyed();
		test_soft_dirty();
		users_are(ukey, 1, "errors: end: the user key's users back to 1");
		keyctl_invalidate(ukey);
		keyctl_invalidate(ckey);
		tap_ok(wait_in_use(0), "errors: end: every KeyID released");
	}
	return tap_end();
}
