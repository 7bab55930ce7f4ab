// SPDX-License-Identifier: GPL-2.0
/*
 * Figures of the emulated platform (make bench), printed as TAP
 * diagnostics and one "@@BENCH" JSON line:
 *
 * - keyed read, write and execute throughput against KeyID 0, after the
 *   first touch: user-space loops over 1 MiB mapped through KeyID 1 and
 *   through KeyID 0 (the test driver's mmap of an alias);
 * - the cost of one page changing KeyID: one page mapped through KeyIDs 1
 *   and 2, written through one and read through the other in turn;
 * - a nested guest (the test driver's SVM hypervisor) running the same
 *   loop of loads, stores and branches over 64 MiB, some 10^8
 *   instructions, with KeyID 0 and with KeyID 1 in its NPT leaf entries.
 *
 * With "bench=boot" on the kernel command line it only reports that it
 * started (make bench times the boot with it); with "bench=switch" it
 * measures the page change only, while a second vCPU is kept busy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"
#include "svm.h"

#define PAGE		4096
#define PAGES		256		/* 1 MiB per mapping */
#define PASSES		64
#define ROUNDS		5
#define SWITCHES	2000
#define LOOP_BYTES	(64ull << 20)
#define LOOP_ITERS	12500000ull	/* 9.5 instructions each */
#define LOOP_PAGES	((GUEST_BULK + LOOP_BYTES) / PAGE + 1)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* PAGES fresh pages mapped contiguously through keyid, read-write-exec */
static uint8_t *map_pages(unsigned int keyid)
{
	uint8_t *base = mmap(NULL, PAGES * PAGE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	for (int i = 0; i < PAGES; i++) {
		uint64_t pa = lab_alloc();

		if (!pa || mmap(base + i * PAGE, PAGE,
				PROT_READ | PROT_WRITE | PROT_EXEC,
				MAP_SHARED | MAP_FIXED, lab_fd,
				pa | (uint64_t)keyid << lab_info.keyid_shift) ==
			   MAP_FAILED)
			return NULL;
	}
	return base;
}

/* Seconds for PASSES reads of the mapping, after one to warm up */
static double read_s(volatile uint64_t *p)
{
	uint64_t sum = 0;
	double t = 0;

	for (int pass = -1; pass < PASSES; pass++) {
		if (pass == 0)
			t = now();
		for (size_t i = 0; i < PAGES * PAGE / 8; i++)
			sum += p[i];
	}
	t = now() - t;
	asm volatile("" : : "r" (sum));
	return t;
}

static double write_s(volatile uint64_t *p)
{
	double t = 0;

	for (int pass = -1; pass < PASSES; pass++) {
		if (pass == 0)
			t = now();
		for (size_t i = 0; i < PAGES * PAGE / 8; i++)
			p[i] = i;
	}
	return now() - t;
}

/* Straight-line code over all the pages: xor %eax, %eax; add $1, %rax ... ret */
static void write_code(uint8_t *p)
{
	static const uint8_t add[4] = { 0x48, 0x83, 0xc0, 0x01 };

	for (size_t i = 0; i < PAGES * PAGE / 4; i++)
		memcpy(p + 4 * i, add, 4);
	memcpy(p, (uint8_t[]){ 0x31, 0xc0, 0x90, 0x90 }, 4);
	memcpy(p + PAGES * PAGE - 4, (uint8_t[]){ 0x90, 0x90, 0x90, 0xc3 }, 4);
}

static double exec_s(uint8_t *p)
{
	uint64_t (*fn)(void) = (uint64_t (*)(void))p;
	uint64_t count = 0;
	double t = 0;

	for (int pass = -1; pass < PASSES * 4; pass++) {
		if (pass == 0)
			t = now();
		count += fn();
	}
	t = now() - t;
	asm volatile("" : : "r" (count));
	return t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of ROUNDS runs of f on m0 and on m1, in turn */
static void median_pair(double (*f)(volatile uint64_t *), void *m0, void *m1,
			double *t0, double *t1)
{
	double a[ROUNDS], b[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		a[i] = f(m0);
		b[i] = f(m1);
	}
	qsort(a, ROUNDS, sizeof(a[0]), cmp_double);
	qsort(b, ROUNDS, sizeof(b[0]), cmp_double);
	*t0 = a[ROUNDS / 2];
	*t1 = b[ROUNDS / 2];
}

static double exec_s_v(volatile uint64_t *p)
{
	return exec_s((uint8_t *)p);
}

/* One page through KeyIDs a and b: written through one, read through the other */
static double switch_us(unsigned int a, unsigned int b)
{
	uint64_t pa = lab_alloc();
	volatile uint64_t *pa_a, *pa_b;
	uint64_t sum = 0;
	double t = 0;

	pa_a = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, lab_fd,
		    pa | (uint64_t)a << lab_info.keyid_shift);
	pa_b = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, lab_fd,
		    pa | (uint64_t)b << lab_info.keyid_shift);
	if (!pa || pa_a == MAP_FAILED || pa_b == MAP_FAILED)
		return -1;
	t = now();
	for (int i = 0; i < SWITCHES; i++) {
		pa_a[i % 512] = i;
		sum += pa_b[i % 512];
	}
	t = now() - t;
	asm volatile("" : : "r" (sum));
	return t / SWITCHES / 2 * 1e6;
}

/* One run of the nested guest's loop: its seconds, or -1 */
static double nested_loop(int fd, unsigned int keyid)
{
	struct mktme_lab_svm_run r = {
		.timeout_ms = 300000,
		.regs[2] = LOOP_ITERS,
		.regs[3] = LOOP_BYTES - 1,
	};

	if (guest_run(fd, &r, keyid, GUEST_LOOP) || r.exit_code != SVM_EXIT_HLT ||
	    r.timed_out)
		return -1;
	return r.ns / 1e9;
}

/*
 * Two guests, NPT leaf entries with KeyID 0 and with KeyID 1: the first
 * run of each (first touch), then the median of ROUNDS runs, in turn.
 */
static bool nested(double *first0, double *t0, double *first1, double *t1)
{
	int fd0 = guest_open(LOOP_PAGES), fd1 = guest_open(LOOP_PAGES);
	double a[ROUNDS], b[ROUNDS];
	bool ok = fd0 >= 0 && fd1 >= 0 && guest_setup(fd0, 0, LOOP_PAGES) &&
		  guest_setup(fd1, 1, LOOP_PAGES);

	if (ok) {
		*first0 = nested_loop(fd0, 0);
		*first1 = nested_loop(fd1, 1);
		for (int i = 0; i < ROUNDS; i++) {
			a[i] = nested_loop(fd0, 0);
			b[i] = nested_loop(fd1, 1);
		}
		qsort(a, ROUNDS, sizeof(a[0]), cmp_double);
		qsort(b, ROUNDS, sizeof(b[0]), cmp_double);
		*t0 = a[ROUNDS / 2];
		*t1 = b[ROUNDS / 2];
		ok = *first0 > 0 && *first1 > 0 && a[0] > 0 && b[0] > 0;
	}
	if (fd0 >= 0)
		close(fd0);
	if (fd1 >= 0)
		close(fd1);
	return ok;
}

static bool cmdline_has(const char *s)
{
	char buf[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	return strstr(buf, s) != NULL;
}

/* The page change while CPU 1 runs a busy loop */
static int switch_busy(void)
{
	cpu_set_t cpu1;
	double sw, same;
	pid_t pid;

	for (unsigned int cpu = 0; cpu < 2; cpu++)
		tap_ok(program(cpu, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
			       NULL, NULL, 16) == 0 &&
		       program(cpu, 2, KEYID_SET_KEY_RANDOM,
			       ENC_ALG_AES_XTS_128, NULL, NULL, 16) == 0,
		       "KeyIDs 1 and 2 programmed on package %u", cpu);
	pid = fork();
	if (pid == 0) {
		CPU_ZERO(&cpu1);
		CPU_SET(1, &cpu1);
		sched_setaffinity(0, sizeof(cpu1), &cpu1);
		for (;;)
			asm volatile("" ::: "memory");
	}
	same = switch_us(1, 1);
	sw = switch_us(1, 2);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	tap_ok(pid > 0 && same > 0 && sw > 0,
	       "page-change cost measured with CPU 1 busy");
	tap_diag("one page changing KeyID, CPU 1 busy: %.1f us", sw - same);
	printf("@@BENCH {\"switch_busy_us\":%.2f}\n", sw - same);
	return tap_end();
}

int main(void)
{
	double r0, r1, w0, w1, x0, x1, sw, same, n0f = 0, n0 = 0, n1f = 0, n1 = 0;
	const double mib = PASSES * PAGES * PAGE / 1048576.0;
	const double minstr = PASSES * 4 * PAGES * PAGE / 4 / 1e6;
	uint8_t *k0, *k1;
	cpu_set_t cpu0;

	tap_begin();
	if (!tap_ok(lab_open() == 0 && lab_info.tme, "TME-MK present") ||
	    cmdline_has("bench=boot"))
		return tap_end();
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);
	if (cmdline_has("bench=switch"))
		return switch_busy();
	tap_ok(program(0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == 0 &&
	       program(0, 2, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == 0, "KeyIDs 1 and 2 programmed (AES-XTS-128)");

	k0 = map_pages(0);
	k1 = map_pages(1);
	if (!tap_ok(k0 && k1, "1 MiB mapped through KeyID 0 and through "
		    "KeyID 1"))
		return tap_end();
	median_pair(read_s, k0, k1, &r0, &r1);
	median_pair(write_s, k0, k1, &w0, &w1);
	write_code(k0);
	write_code(k1);
	median_pair(exec_s_v, k0, k1, &x0, &x1);
	r0 = mib / r0;
	r1 = mib / r1;
	w0 = mib / w0;
	w1 = mib / w1;
	x0 = minstr / x0;
	x1 = minstr / x1;
	tap_diag("read  MiB/s: KeyID 0 %.1f, KeyID 1 %.1f (ratio %.2f)", r0,
		 r1, r0 / r1);
	tap_diag("write MiB/s: KeyID 0 %.1f, KeyID 1 %.1f (ratio %.2f)", w0,
		 w1, w0 / w1);
	tap_diag("exec  Minstr/s: KeyID 0 %.1f, KeyID 1 %.1f (ratio %.2f)", x0,
		 x1, x0 / x1);

	same = switch_us(1, 1);
	sw = switch_us(1, 2);
	tap_ok(same > 0 && sw > 0, "page-change cost measured");
	tap_diag("one page changing KeyID: %.1f us (the same loop without "
		 "changes: %.2f us per access)", sw - same, same);

	if (!tap_ok(nested(&n0f, &n0, &n1f, &n1),
		    "nested guest loop with KeyID 0 and KeyID 1 NPT entries"))
		return tap_end();
	tap_diag("nested loop, %.0f M instructions over 64 MiB: KeyID 0 %.3f s "
		 "(first run %.3f s), KeyID 1 %.3f s (first run %.3f s), "
		 "ratio %.2f", LOOP_ITERS * 9.5 / 1e6, n0, n0f, n1, n1f,
		 n1 / n0);
	printf("@@BENCH {\"read_keyid0\":%.1f,\"read_keyed\":%.1f,"
	       "\"write_keyid0\":%.1f,\"write_keyed\":%.1f,"
	       "\"exec_keyid0\":%.1f,\"exec_keyed\":%.1f,"
	       "\"switch_us\":%.2f,\"access_us\":%.3f,"
	       "\"nested_minstr\":%.0f,\"nested_keyid0_s\":%.3f,"
	       "\"nested_keyid0_first_s\":%.3f,\"nested_keyed_s\":%.3f,"
	       "\"nested_keyed_first_s\":%.3f}\n", r0, r1, w0, w1, x0, x1,
	       sw - same, same, LOOP_ITERS * 9.5 / 1e6, n0, n0f, n1, n1f);
	return tap_end();
}
