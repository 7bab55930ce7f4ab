// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of keyed pages outside the VMA paths, on the patched kernel:
 *  - a keyed page's KeyID reference goes with the page at once: users= in
 *    /proc/keys is exact right after munmap(), with no LRU drain (keyed
 *    folios skip the per-CPU LRU batches, and a VMA's reference is dropped
 *    when it is freed, not after an RCU grace period);
 *  - a hardware-poisoned keyed page (MADV_HWPOISON) is never reused, but
 *    its KeyID reference is dropped, so that the KeyID can be released;
 *  - device-private migration (test_hmm's dmirror device, through
 *    migrate_vma_setup()) refuses keyed memory, whose ciphertext would not
 *    decrypt elsewhere, and still migrates plain memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyed_lib.h"

/* lib/test_hmm_uapi.h of the kernel tree */
struct hmm_dmirror_cmd {
	uint64_t addr;
	uint64_t ptr;
	uint64_t npages;
	uint64_t cpages;
	uint64_t faults;
};

#define HMM_DMIRROR_MIGRATE_TO_DEV	_IOWR('H', 0x02, struct hmm_dmirror_cmd)
#define HMM_DEVICE			"/dev/hmm_dmirror0"

static key_serial_t key;

static void test_prompt_release(void)
{
	const size_t len = 64 * PAGE;
	char *p = map_keyed(len, key);
	int got;

	if (!p) {
		tap_ok(false, "prompt release: key 64 pages");
		return;
	}
	fill(p, len, 30);
	tap_ok(users(key) == 1 + 1 + 64, "prompt release: users=66 (key + VMA "
	       "+ 64 pages) as soon as they are written");
	unmap(p, len);
	got = users(key);
	tap_ok(got == 1, "prompt release: users=1 right after munmap(), "
	       "without draining anything (%d)", got);
}

static void test_hwpoison(void)
{
	int status, u;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		char *p = map_keyed(2 * PAGE, key);

		if (!p)
			_exit(2);
		fill(p, 2 * PAGE, 31);
		/* Poison the first page; the process may get SIGBUS for it */
		if (madvise(p, PAGE, MADV_HWPOISON))
			_exit(3);
		_exit(holds(p + PAGE, PAGE, 31) ? 0 : 4);
	}
	waitpid(pid, &status, 0);
	tap_ok((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
	       (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS),
	       "hwpoison: a process poisons one of its two keyed pages "
	       "(MADV_HWPOISON; exit %d, signal %d)",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	       WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	u = wait_users(key, 1);
	tap_ok(u == 1, "hwpoison: once the process is gone, the poisoned "
	       "page's KeyID reference is gone too: users=1 (%d)", u);
}

/* Migrate [p, p + len) to the dmirror device: the ioctl's result */
static int migrate_to_device(int fd, char *p, size_t len,
			     struct hmm_dmirror_cmd *cmd)
{
	static uint8_t mirror[16 * PAGE];

	*cmd = (struct hmm_dmirror_cmd){
		.addr = (uintptr_t)p, .ptr = (uintptr_t)mirror,
		.npages = len / PAGE,
	};
	return ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd);
}

static void test_device_migration(void)
{
	const size_t len = 4 * PAGE;
	struct hmm_dmirror_cmd cmd;
	int fd = open(HMM_DEVICE, O_RDWR | O_CLOEXEC), r, e, u;
	uint64_t pfn;
	char *p, *q;

	if (!tap_ok(fd >= 0, "migration: %s (test_hmm) opens", HMM_DEVICE))
		return;
	/* Plain memory migrates, and faults back when touched */
	q = map_anon(len);
	fill(q, len, 32);
	r = migrate_to_device(fd, q, len, &cmd);
	tap_ok(r == 0 && cmd.cpages == len / PAGE && holds(q, len, 32),
	       "migration: plain memory moves to device memory and back "
	       "(%d, %llu pages)", r, (unsigned long long)cmd.cpages);
	unmap(q, len);

	p = map_keyed(len, key);
	if (!p) {
		tap_ok(false, "migration: key 4 pages");
		close(fd);
		return;
	}
	fill(p, len, 33);
	pfn = pfn_of(p);
	u = users(key);
	errno = 0;
	r = migrate_to_device(fd, p, len, &cmd);
	e = errno;
	tap_ok(r == -1 && e == EINVAL && pfn_of(p) == pfn && holds(p, len, 33) &&
	       users(key) == u,
	       "migration: migrate_vma_setup() refuses keyed memory: EINVAL, "
	       "the pages stay where they are, contents intact (%d, %s)", r,
	       ename(e));
	unmap(p, len);
	close(fd);
}

int main(void)
{
	tap_begin();
	key = add_mktme("pages", "type=cpu algorithm=aes-xts-128");
	/* A child uses it too, without possessing it: read for our uid */
	keyctl_setperm(key, KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ);
	if (tap_ok(key > 0 && users(key) == 1, "pages: a CPU key, users=1")) {
		test_prompt_release();
		test_device_migration();
		test_hwpoison();
		keyctl_invalidate(key);
		tap_ok(wait_in_use(0), "pages: end: every KeyID released");
	}
	return tap_end();
}
