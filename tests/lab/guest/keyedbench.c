// SPDX-License-Identifier: GPL-2.0
/*
 * Cost of keyed anonymous memory on the emulated platform: mmap() of
 * 256 MiB, then mprotect() or encrypt_mprotect() and a write to every page
 * (first touch: fault, allocation, zeroing).  Three runs:
 *
 *  - plain: mprotect(), pages zeroed through KeyID 0 (TCG's RAM fast path);
 *  - no-encrypt key: encrypt_mprotect() with a KEYID_NO_ENCRYPT key, so
 *    the kernel's keyed path (clflush, page_ext, zeroing and writes
 *    through the KeyID alias) and the emulator's alias region, without
 *    AES;
 *  - AES-XTS-128 key: the same with encryption.
 *
 * no-encrypt minus plain is the keyed path (kernel + emulator I/O path);
 * AES minus no-encrypt is the emulator's crypto.  TAP, plus one "@@BENCH"
 * JSON line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

#define NR_ENCRYPT_MPROTECT	463
#define SIZE			(256UL << 20)

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Seconds for (encrypt_)mprotect + first touch of SIZE; < 0 on error */
static double run(key_serial_t key, bool keyed)
{
	long page = sysconf(_SC_PAGESIZE);
	volatile char *p;
	double t0, t;
	int r;

	p = mmap(NULL, SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	t0 = now_s();
	if (keyed)
		r = syscall(NR_ENCRYPT_MPROTECT, p, SIZE,
			    PROT_READ | PROT_WRITE, key, 0);
	else
		r = mprotect((void *)p, SIZE, PROT_READ | PROT_WRITE);
	if (r) {
		tap_diag("%s: %s", keyed ? "encrypt_mprotect" : "mprotect",
			 strerror(errno));
		munmap((void *)p, SIZE);
		return -1;
	}
	for (unsigned long off = 0; off < SIZE; off += page)
		p[off] = 1;
	t = now_s() - t0;
	munmap((void *)p, SIZE);
	return t;
}

static key_serial_t key(const char *desc, const char *payload)
{
	return add_key("mktme", desc, payload, strlen(payload),
		       KEY_SPEC_PROCESS_KEYRING);
}

int main(void)
{
	key_serial_t aes, none;
	double plain, noenc, keyed;

	tap_begin();
	aes = key("keyedbench-aes", "type=user algorithm=aes-xts-128 "
		  "key=000102030405060708090a0b0c0d0e0f "
		  "tweak=101112131415161718191a1b1c1d1e1f");
	none = key("keyedbench-none", "type=no-encrypt algorithm=aes-xts-128");
	tap_ok(aes > 0 && none > 0, "two mktme keys (%s)",
	       aes > 0 && none > 0 ? "ok" : strerror(errno));
	plain = run(0, false);
	tap_ok(plain > 0, "mprotect + first touch of 256 MiB: %.2f s", plain);
	noenc = run(none, true);
	tap_ok(noenc > 0, "encrypt_mprotect (no-encrypt key) + first touch: %.2f s",
	       noenc);
	keyed = run(aes, true);
	tap_ok(keyed > 0, "encrypt_mprotect (AES-XTS-128) + first touch: %.2f s",
	       keyed);
	printf("@@BENCH {\"plain_s\":%.3f,\"noencrypt_s\":%.3f,\"aes_s\":%.3f}\n",
	       plain, noenc, keyed);
	return tap_end();
}
