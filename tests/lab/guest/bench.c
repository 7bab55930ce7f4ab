// SPDX-License-Identifier: GPL-2.0
/*
 * Keyed-access throughput of the emulated platform: 4 KiB copies through
 * KeyID 1 against KeyID 0, timed in the guest kernel around the copy.
 * Prints TAP with the figures as diagnostics and one "@@BENCH" JSON line.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "lab.h"

#define PAGE	4096
#define ROUNDS	64

static double mib_per_s(uint64_t pa, unsigned int keyid, unsigned int op)
{
	static uint8_t buf[PAGE];
	struct mktme_lab_mem m;
	uint64_t ns = 0;

	for (int i = 0; i < ROUNDS; i++) {
		m = (struct mktme_lab_mem){ .phys = pa, .keyid = keyid,
			.op = op, .len = PAGE, .buf = (uintptr_t)buf };
		if (lab_mem(&m))
			return 0;
		ns += m.ns;
	}
	return ns ? (double)ROUNDS * PAGE / (1 << 20) / (ns / 1e9) : 0;
}

int main(void)
{
	double r0, r1, w0, w1;
	uint64_t pa;

	tap_begin();
	if (!tap_ok(lab_open() == 0 && lab_info.tme, "TME-MK present"))
		return tap_end();
	pa = lab_alloc();
	tap_ok(program(0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == 0, "KeyID 1 programmed (AES-XTS-128)");
	mib_per_s(pa, 0, MKTME_LAB_READ);	/* warm up */
	r0 = mib_per_s(pa, 0, MKTME_LAB_READ);
	w0 = mib_per_s(pa, 0, MKTME_LAB_WRITE);
	r1 = mib_per_s(pa, 1, MKTME_LAB_READ);
	w1 = mib_per_s(pa, 1, MKTME_LAB_WRITE);
	tap_ok(r0 > 0 && r1 > 0 && w0 > 0 && w1 > 0, "throughput measured");
	tap_diag("read  MiB/s: KeyID 0 %.1f, KeyID 1 %.1f (%.1fx slower)", r0,
		 r1, r0 / r1);
	tap_diag("write MiB/s: KeyID 0 %.1f, KeyID 1 %.1f (%.1fx slower)", w0,
		 w1, w0 / w1);
	printf("@@BENCH {\"read_keyid0\":%.1f,\"read_keyed\":%.1f,"
	       "\"write_keyid0\":%.1f,\"write_keyed\":%.1f}\n", r0, r1, w0, w1);
	lab_free(pa);
	return tap_end();
}
