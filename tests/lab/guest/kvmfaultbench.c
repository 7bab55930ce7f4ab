// SPDX-License-Identifier: GPL-2.0
/*
 * KVM's own cost of faulting in guest memory, keyed against not: a guest
 * touches each page of 64 MiB once, the VMM having faulted the memory in
 * beforehand, so that what is timed is KVM's handling of 16384 NPT/EPT
 * violations (GUP, the KeyID check, the SPTE).  The keyed VM uses a
 * no-encrypt key, so that the emulator's AES is not measured.  Keyed
 * memory has no transparent huge pages, so the plain VM's memory is
 * measured both without them (MADV_NOHUGEPAGE: the same memory, KVM's own
 * cost) and with them (what a plain VM has by default).  Three runs of
 * each, alternating; medians.  Run under -icount (the lab's --icount),
 * where the TSC counts instructions.  Millions of TSC ticks.  TAP, plus
 * one "@@BENCH" JSON line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <x86intrin.h>
#include <unistd.h>

#include "kvm_lab.h"
#include "lab.h"

#define PAGE		4096
#define TOUCH_GPA	0x100000
#define PAGES		16384
#define RUNS		3

/* Touch PAGES pages from TOUCH_GPA on, then HLT */
static const uint8_t guest_code[] = {
	0xbf, 0x00, 0x00, 0x10, 0x00,	/* mov edi, 0x100000 */
	0xb9, PAGES & 0xff, (PAGES >> 8) & 0xff, 0x00, 0x00,	/* mov ecx */
	0xc6, 0x07, 0x01,		/* 1: mov byte [edi], 1 */
	0x81, 0xc7, 0x00, 0x10, 0x00, 0x00,	/* add edi, 4096 */
	0x49,				/* dec ecx */
	0x75, 0xf4,			/* jnz 1b */
	0xf4,				/* hlt */
};

/*
 * Millions of TSC ticks: under -icount (the lab's --icount), the TSC counts
 * the guest's instructions, whatever else the host does.
 */
static double now_s(void)
{
	return __rdtsc() / 1e6;
}

/* A statistic of VM @v from KVM's debugfs (vCPU ones summed), or -1 */
static long long vm_stat(const struct kvm_lab_vm *v, const char *name)
{
	char path[128];
	long long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/kvm/%d-%d/%s",
		 getpid(), v->vm, name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/* Mticks from KVM_RUN to HLT, or < 0; @thp: the VMM's memory may be THP */
static double run(key_serial_t key, bool thp)
{
	const size_t size = TOUCH_GPA + (size_t)PAGES * PAGE;
	struct kvm_lab_vm v;
	const char *what = "";
	double t0, t = -1;
	int r;

	r = kvm_lab_vm_create(&v, size, key, &what);
	if (r) {
		tap_diag("%s: %s", what, strerror(-r));
		goto out;
	}
	if (!thp && !key && madvise(v.mem, size, MADV_NOHUGEPAGE)) {
		tap_diag("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
		goto out;
	}
	/* Fault the memory in for the VMM: only KVM's faults are timed */
	for (size_t off = 0; off < size; off += PAGE)
		v.mem[off] = 0;
	if (kvm_lab_vcpu_start(&v, guest_code, sizeof(guest_code)))
		goto out;
	t0 = now_s();
	r = kvm_lab_run(&v);
	if (r == KVM_EXIT_HLT) {
		t = now_s() - t0;
		/* What KVM did: the same for both, or the ratio is not KVM's */
		tap_diag("%s VM: %lld exits, %lld page faults taken, %lld fixed",
			 key ? "keyed" : thp ? "plain (THP)" : "plain",
			 vm_stat(&v, "exits"),
			 vm_stat(&v, "pf_taken"), vm_stat(&v, "pf_fixed"));
	} else
		tap_diag("exit %d", r);
out:
	kvm_lab_vm_destroy(&v);
	return t;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	double plain[RUNS], thp[RUNS], keyed[RUNS];
	key_serial_t key;
	bool ok = true;

	tap_begin();
	key = add_key("mktme", "faultbench",
		      "type=no-encrypt algorithm=aes-xts-128", 37,
		      KEY_SPEC_PROCESS_KEYRING);
	if (!tap_ok(key > 0, "a no-encrypt key"))
		return tap_end();
	for (int i = 0; i < RUNS; i++) {
		plain[i] = run(0, false);
		thp[i] = run(0, true);
		keyed[i] = run(key, false);
		ok &= tap_ok(plain[i] > 0 && thp[i] > 0 && keyed[i] > 0,
			     "run %d: %d faults, plain VM %.1f (with THP %.1f), "
			     "keyed VM %.1f Mticks", i + 1, PAGES, plain[i],
			     thp[i], keyed[i]);
	}
	keyctl_invalidate(key);
	if (ok) {
		qsort(plain, RUNS, sizeof(double), cmp);
		qsort(thp, RUNS, sizeof(double), cmp);
		qsort(keyed, RUNS, sizeof(double), cmp);
		printf("@@BENCH {\"faults\":%d,\"plain\":%.2f,\"plain_thp\":%.2f,"
		       "\"keyed\":%.2f}\n", PAGES, plain[RUNS / 2], thp[RUNS / 2],
		       keyed[RUNS / 2]);
	}
	return tap_end();
}
