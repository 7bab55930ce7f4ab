// SPDX-License-Identifier: GPL-2.0
/*
 * What keyed memory costs the memory that is not keyed: page fault, copy
 * on write and free of 1 GiB of plain anonymous memory, before any key is
 * used (the keyed-memory hooks switched off) and after (switched on for
 * the rest of the boot, by keying one page).  Each phase three times, the
 * median, in millions of TSC ticks.  TAP, plus one "@@BENCH" JSON line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <x86intrin.h>
#include <unistd.h>

#include "lab.h"

#define NR_ENCRYPT_MPROTECT	463
#define SIZE			(1UL << 30)
#define RUNS			3

struct times {
	double fault, cow, free;
};

/*
 * Millions of TSC ticks: under -icount (the lab's --icount), the TSC counts
 * the guest's instructions, whatever else the host does.
 */
static double now_s(void)
{
	return __rdtsc() / 1e6;
}

static void touch(volatile char *p, char c)
{
	long page = sysconf(_SC_PAGESIZE);

	for (size_t i = 0; i < SIZE; i += page)
		p[i] = c;
}

/* Fault in, copy on write in a child, free: false on error */
static bool run(struct times *t)
{
	volatile char *p;
	int fds[2], status;
	double t0;
	pid_t pid;

	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || pipe(fds))
		return false;
	t0 = now_s();
	touch(p, 1);
	t->fault = now_s() - t0;

	pid = fork();
	if (pid == 0) {
		double cow;

		t0 = now_s();
		touch(p, 2);
		cow = now_s() - t0;
		_exit(write(fds[1], &cow, sizeof(cow)) != sizeof(cow));
	}
	if (pid < 0 || read(fds[0], &t->cow, sizeof(t->cow)) != sizeof(t->cow))
		return false;
	waitpid(pid, &status, 0);
	close(fds[0]);
	close(fds[1]);

	t0 = now_s();
	munmap((void *)p, SIZE);
	t->free = now_s() - t0;
	return true;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median3(double a, double b, double c)
{
	double v[3] = { a, b, c };

	qsort(v, 3, sizeof(v[0]), cmp);
	return v[1];
}

static bool phase(const char *name, struct times *m)
{
	struct times t[RUNS] = { 0 };

	for (int i = 0; i < RUNS; i++) {
		/* Run first: the arguments below are read after it */
		bool ok = run(&t[i]);

		if (!tap_ok(ok, "%s, run %d: fault %.1f, copy on write %.1f, "
			    "free %.1f Mticks", name, i + 1, t[i].fault,
			    t[i].cow, t[i].free))
			return false;
	}
	m->fault = median3(t[0].fault, t[1].fault, t[2].fault);
	m->cow = median3(t[0].cow, t[1].cow, t[2].cow);
	m->free = median3(t[0].free, t[1].free, t[2].free);
	return true;
}

/* Key one page once: the keyed-memory hooks stay on until reboot */
static bool switch_on(void)
{
	key_serial_t key = add_key("mktme", "hotpath",
				   "type=no-encrypt algorithm=aes-xts-128", 37,
				   KEY_SPEC_PROCESS_KEYRING);
	long page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	bool ok = key > 0 && p != MAP_FAILED &&
		  !syscall(NR_ENCRYPT_MPROTECT, p, page,
			   PROT_READ | PROT_WRITE, key, 0);

	if (ok)
		p[0] = 1;
	munmap(p, page);
	keyctl_invalidate(key);
	return tap_ok(ok, "a key used once: the keyed-memory hooks are on");
}

int main(void)
{
	struct times off, on;

	tap_begin();
	if (phase("no key used yet", &off) && switch_on() &&
	    phase("a key used", &on))
		printf("@@BENCH {\"fault_off\":%.3f,\"fault_on\":%.3f,"
		       "\"cow_off\":%.3f,\"cow_on\":%.3f,\"free_off\":%.3f,"
		       "\"free_on\":%.3f}\n", off.fault, on.fault, off.cow,
		       on.cow, off.free, on.free);
	return tap_end();
}
