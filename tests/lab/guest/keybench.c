// SPDX-License-Identifier: GPL-2.0
/*
 * Latency of the mktme key service on the emulated platform: add_key()
 * (KeyID allocation + PCONFIG on every package) and revoke, with the
 * KeyID space empty and nearly full (the allocator's cost should not grow
 * with the number of KeyIDs in use).  TAP, plus one "@@BENCH" JSON line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

#define ROUNDS	100

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static long in_use(void)
{
	FILE *f = fopen("/sys/kernel/mm/mktme/keyids_in_use", "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static void wait_in_use(long want)
{
	for (int i = 0; i < 100000 && in_use() != want; i++)
		usleep(1000);
}

/* Mean add_key() and revoke latency in microseconds over ROUNDS */
static int cycle(double *add_us, double *revoke_us)
{
	static const char payload[] = "type=cpu algorithm=aes-xts-128";
	long base = in_use();
	double t0, a = 0, r = 0;

	for (int i = 0; i < ROUNDS; i++) {
		key_serial_t k;

		t0 = now_us();
		k = add_key("mktme", "bench", payload, strlen(payload),
			    KEY_SPEC_PROCESS_KEYRING);
		a += now_us() - t0;
		if (k < 0)
			return -errno;
		t0 = now_us();
		keyctl_revoke(k);
		keyctl_unlink(k, KEY_SPEC_PROCESS_KEYRING);
		wait_in_use(base);
		r += now_us() - t0;
	}
	*add_us = a / ROUNDS;
	*revoke_us = r / ROUNDS;
	return 0;
}

int main(void)
{
	double add0, rev0, addf, revf, t0, fill_s;
	long total = -1;
	FILE *f = fopen("/sys/kernel/mm/mktme/keyids_total", "r");
	key_serial_t ring;
	int n = 0;

	tap_begin();
	if (f) {
		if (fscanf(f, "%ld", &total) != 1)
			total = -1;
		fclose(f);
	}
	if (!tap_ok(total > 1, "mktme KeyIDs: %ld", total))
		return tap_end();
	tap_ok(cycle(&add0, &rev0) == 0, "add/revoke cycles, KeyIDs free");

	/* Fill all but one KeyID, in a keyring of their own */
	ring = add_key("keyring", "fill", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
	t0 = now_us();
	for (long i = 0; i < total - 1; i++) {
		char d[32];

		snprintf(d, sizeof(d), "f%ld", i);
		if (add_key("mktme", d, "type=no-encrypt algorithm=aes-xts-128",
			    38, ring) < 0)
			break;
		n++;
	}
	fill_s = (now_us() - t0) / 1e6;
	tap_ok(n == total - 1, "filled %d of %ld KeyIDs in %.1f s", n, total,
	       fill_s);
	tap_ok(cycle(&addf, &revf) == 0, "add/revoke cycles, one KeyID free");
	tap_diag("add_key: %.0f us with KeyIDs free, %.0f us with %d in use",
		 add0, addf, n);
	tap_diag("revoke until the KeyID is free again: %.0f us, %.0f us",
		 rev0, revf);
	printf("@@BENCH {\"keyids\":%ld,\"add_us_empty\":%.0f,"
	       "\"add_us_full\":%.0f,\"revoke_us_empty\":%.0f,"
	       "\"revoke_us_full\":%.0f,\"fill_keys_per_s\":%.0f}\n", total,
	       add0, addf, rev0, revf, n / fill_s);
	keyctl_clear(ring);
	return tap_end();
}
