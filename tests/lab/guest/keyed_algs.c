// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of user keys of both algorithms on the patched kernel: for
 * AES-XTS-128 and AES-XTS-256, a page keyed with a type=user key reads, at
 * KeyID 0 in RAM, as AES-XTS under exactly the user's data key and tweak
 * key (the reference cipher is python3-cryptography on the host, tweak =
 * physical address), on each package's memory; and again after suspend to
 * RAM, which makes the platform forget every key: the kernel programs the
 * boot package's keys on resume and the other package's when its CPU comes
 * back online, from the key bytes it kept.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyed_lib.h"

#define MAX_CPUS	2

struct user_key {
	const char *alg;
	size_t len;			/* bytes of each of the two keys */
	uint8_t data[32], tweak[32];
	key_serial_t serial;
	char *page[MAX_CPUS];		/* one page on each package's node */
};

static struct user_key keys[] = {
	{ .alg = "aes-xts-128", .len = 16 },
	{ .alg = "aes-xts-256", .len = 32 },
};

static int nr_cpus;

static bool add_user_key(struct user_key *k)
{
	char payload[256], *p = payload;

	/* Distinct bytes everywhere, so that a half or a swap shows */
	for (size_t i = 0; i < k->len; i++) {
		k->data[i] = 0x10 + i + k->len;
		k->tweak[i] = 0x80 + i + k->len;
	}
	p += sprintf(p, "type=user algorithm=%s key=", k->alg);
	for (size_t i = 0; i < k->len; i++)
		p += sprintf(p, "%02x", k->data[i]);
	p += sprintf(p, " tweak=");
	for (size_t i = 0; i < k->len; i++)
		p += sprintf(p, "%02x", k->tweak[i]);
	k->serial = add_mktme(k->alg, payload);
	return tap_ok(k->serial > 0, "%s: a user key (KeyID %d)", k->alg,
		      key_field(k->serial, " keyid="));
}

/* Pin this thread to @cpu: false if that CPU is not online */
static bool on_cpu(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof(one), &one) == 0;
}

/* Does RAM hold AES-XTS of the page under k's data and tweak keys? */
static bool ram_matches(const struct user_key *k, const char *p)
{
	static uint8_t ct[PAGE], ref[PAGE];
	uint8_t xts_key[64];
	uint64_t pa = pfn_of(p) * PAGE;

	if (!pa || lab_physread(pa, ct, PAGE))
		return false;
	memcpy(xts_key, k->data, k->len);
	memcpy(xts_key + k->len, k->tweak, k->len);
	for (size_t i = 0; i < PAGE; i += 16)
		if (lab_xts(xts_key, 2 * k->len, pa + i, (const uint8_t *)p + i,
			    ref + i, 16, false) < 0)
			return false;
	return memcmp(ct, ref, PAGE) == 0;
}

static void test_ciphertext(struct user_key *k, int cpu, const char *when)
{
	char *p = k->page[cpu];

	tap_ok(p && holds(p, PAGE, 50 + cpu) && ram_matches(k, p),
	       "%s, package %d's memory, %s: the page reads back, and RAM holds "
	       "%s of it under the user's data and tweak keys", k->alg, cpu,
	       when, k->alg);
}

static bool suspend_to_ram(void)
{
	char *states = read_text("/sys/power/state");
	bool can = states && strstr(states, "mem");
	int r;

	free(states);
	if (!can)
		return false;
	/* S3, not s2idle: the platform must lose its keys */
	write_or_fail("/sys/power/mem_sleep", "deep");
	r = lab_wakeup_after(3);
	if (!r)
		r = lab_write_file("/sys/power/state", "mem");
	return tap_ok(r == 0, "suspend to RAM (S3) and wake up (%s)",
		      strerror(-r));
}

int main(void)
{
	size_t n = sizeof(keys) / sizeof(keys[0]);
	cpu_set_t all;

	tap_begin();
	nr_cpus = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? MAX_CPUS : 1;
	sched_getaffinity(0, sizeof(all), &all);
	for (size_t i = 0; i < n; i++) {
		if (!add_user_key(&keys[i]))
			continue;
		for (int cpu = 0; cpu < nr_cpus; cpu++) {
			if (!on_cpu(cpu))
				continue;
			/* First touched on this CPU: its node's memory */
			keys[i].page[cpu] = map_keyed(PAGE, keys[i].serial);
			if (keys[i].page[cpu])
				fill(keys[i].page[cpu], PAGE, 50 + cpu);
			test_ciphertext(&keys[i], cpu, "after keying");
		}
	}
	sched_setaffinity(0, sizeof(all), &all);
	if (suspend_to_ram()) {
		for (size_t i = 0; i < n; i++)
			for (int cpu = 0; cpu < nr_cpus; cpu++)
				test_ciphertext(&keys[i], cpu, "after resume");
	} else {
		tap_skip("no suspend to RAM", "user keys after resume");
	}
	for (size_t i = 0; i < n; i++) {
		for (int cpu = 0; cpu < nr_cpus; cpu++)
			if (keys[i].page[cpu])
				unmap(keys[i].page[cpu], PAGE);
		keyctl_invalidate(keys[i].serial);
	}
	tap_ok(wait_in_use(0), "algorithms: end: every KeyID released");
	return tap_end();
}
