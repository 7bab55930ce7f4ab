// SPDX-License-Identifier: GPL-2.0
/*
 * Crash safety of the hook: the hook killed with SIGKILL at each point of
 * each phase where it changes something (MKTME_KVM_CRASH_AT=OP:POINT),
 * then what libvirtd runs next (release after a failed start, reconnect
 * after its own restart, the next start).  None may leave a live key the
 * state does not know, revoke a key a running domain uses, or let a
 * domain's QEMU start without its key; the domain must start again.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook_harness.h"

#define KILLED	(128 + 9)

static const char *attr = "type='cpu' algorithm='aes-xts-128'";
static const char *shared = "type='cpu' algorithm='aes-xts-128' key='tenant'";

/* Run OP of domain NAME/UUID killed at POINT */
static int hook_killed(const char *point, const char *name, const char *op,
		       const char *sub, const char *xml)
{
	char at[64];
	int ret;

	snprintf(at, sizeof(at), "%s:%s", op, point);
	setenv("MKTME_KVM_CRASH_AT", at, 1);
	ret = hook(name, op, sub, xml);
	unsetenv("MKTME_KVM_CRASH_AT");
	return ret;
}

/*
 * Live keys in the test's keyring that the state does not name: what a
 * crash would leak
 */
static int unknown_live_keys(void)
{
	key_serial_t r = keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", ring_name, 0);
	key_serial_t *ids = NULL;
	struct state s;
	long n, i, j;
	int unknown = 0;

	if (r <= 0)
		return 0;
	n = keyctl_read_alloc(r, (void **)&ids);
	cr_assert_geq(n, 0);
	load(&s);
	for (i = 0; i < n / (long)sizeof(*ids); i++) {
		bool known = false;

		for (j = 0; j < (long)s.nkeys; j++)
			known |= s.keys[j].serial == ids[i];
		if (alive(ids[i]) && !known) {
			cr_log_info("live key %d is not in the state", ids[i]);
			unknown++;
		}
	}
	state_free(&s);
	free(ids);
	return unknown;
}

static size_t state_size(void)
{
	struct state s;
	size_t n;

	load(&s);
	n = s.nkeys + s.ndomains;
	state_free(&s);
	return n;
}

/* The domain starts cleanly after all: prepare, start, released */
static void starts_again(const char *name, const char *xml)
{
	cr_expect_eq(hook(name, "prepare", "begin", xml), 0, "%s", out);
	cr_expect_eq(hook(name, "start", "begin", xml), 0, "%s", out);
	cr_expect_eq(hook(name, "release", "end", xml), 0, "%s", out);
	cr_expect_eq(unknown_live_keys(), 0);
	cr_expect_eq(state_size(), 0, "nothing left after its release");
}

/* prepare killed at POINT; libvirtd's failed start runs release */
static void prepare_killed_then_release(const char *point)
{
	const char *x = dom(0, "vm1", UUID1, attr, NULL);

	cr_assert_eq(hook_killed(point, "vm1", "prepare", "begin", x), KILLED,
		     "the hook was killed at prepare:%s: %s", point, out);
	cr_expect_eq(hook("vm1", "stopped", "end", x), 0, "%s", out);
	cr_expect_eq(hook("vm1", "release", "end", x), 0, "%s", out);
	cr_expect_eq(ring_key("mktme-kvm:" UUID1), -1, "no key left");
	cr_expect_eq(unknown_live_keys(), 0);
	cr_expect_eq(state_size(), 0, "the state is empty again");
	starts_again("vm1", x);
}

Test(crash, prepare_killed_before_add_key, .init = setup, .fini = teardown)
{
	prepare_killed_then_release("intent-saved");
}

Test(crash, prepare_killed_after_add_key, .init = setup, .fini = teardown)
{
	prepare_killed_then_release("key-created");
}

Test(crash, prepare_killed_after_saving, .init = setup, .fini = teardown)
{
	prepare_killed_then_release("saved");
}

Test(crash, qemu_never_runs_without_its_key, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "vm1", UUID1, attr, NULL);
	char *args[] = { wrapper_path, "-uuid", UUID1, "-machine", "pc,memory-backend=pc.ram",
		"-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":1}",
		NULL };
	static const char *points[] = { "intent-saved", "key-created" };
	size_t i;

	for (i = 0; i < 2; i++) {
		cr_assert_eq(hook_killed(points[i], "vm1", "prepare", "begin", x), KILLED);
		/* Were libvirt to go on anyway: start and the wrapper refuse */
		cr_expect_eq(hook("vm1", "start", "begin", x), 1, "%s", out);
		cr_expect_eq(run(wrapper_path, args, NULL), 1, "%s", out);
		cr_expect(!strstr(out, "memory-backend"), "QEMU did not run: %s", out);
		cr_expect_eq(hook("vm1", "release", "end", x), 0, "%s", out);
	}
	cr_expect_eq(unknown_live_keys(), 0);
}

/*
 * libvirtd killed too (no release follows): the next libvirtd's first
 * hook run, for another domain, cleans up; a start in progress under the
 * same libvirtd is left alone
 */
Test(crash, leftovers_of_a_dead_libvirtd_are_reaped, .init = setup, .fini = teardown)
{
	const char *a = dom(0, "a", UUID1, attr, NULL);
	const char *b = dom(1, "b", UUID2, attr, NULL);
	const char *c = dom(2, "c", UUID3, attr, NULL);
	key_serial_t ka;

	/* a: killed after add_key (a pending entry), b: after saving */
	cr_assert_eq(hook_killed("key-created", "a", "prepare", "begin", a), KILLED);
	ka = ring_key("mktme-kvm:" UUID1);
	cr_assert_gt(ka, 0, "a's key was made before the kill");
	/* The same libvirtd's next run (b's start) revokes a's key, which no
	 * domain entry names */
	cr_assert_eq(hook_killed("saved", "b", "prepare", "begin", b), KILLED);
	cr_expect(!alive(ka), "a's key is revoked");
	/* The same libvirtd starts c: b looks like a start in progress */
	cr_expect_eq(hook("c", "prepare", "begin", c), 0, "%s", out);
	cr_expect_gt(ring_key("mktme-kvm:" UUID2), 0, "b's start may still be going on");
	cr_expect_eq(hook("c", "release", "end", c), 0, "%s", out);
	/* A new libvirtd: b's entry is a leftover (no QEMU): released */
	cr_expect_eq(hook_other_daemon("c", "prepare", "begin", c), 0, "%s", out);
	cr_expect_eq(ring_key("mktme-kvm:" UUID2), -1, "b's key is revoked");
	cr_expect_eq(unknown_live_keys(), 0);
	cr_expect_eq(hook_other_daemon("c", "release", "end", c), 0, "%s", out);
	cr_expect_eq(state_size(), 0);
	starts_again("a", a);
	starts_again("b", b);
}

/* A running guest's key survives every kill and every reconciliation */
Test(crash, running_guests_keep_their_keys, .init = setup, .fini = teardown)
{
	const char *a = dom(0, "a", UUIDQ1, attr, NULL);
	const char *b = dom(1, "b", UUID2, attr, NULL);
	key_serial_t ka;
	struct state s;
	pid_t qa;

	qa = fake_qemu(UUIDQ1);
	cr_assert_eq(hook("a", "prepare", "begin", a), 0, "%s", out);
	cr_assert_eq(hook("a", "start", "begin", a), 0, "%s", out);
	/* started killed before it saved: a stays "prepared" */
	cr_assert_eq(hook_killed("before-save", "a", "started", "begin", a), KILLED);
	ka = ring_key("mktme-kvm:" UUIDQ1);
	/* libvirtd restarts: another domain's start, then a's reconnect */
	cr_expect_eq(hook_other_daemon("b", "prepare", "begin", b), 0, "%s", out);
	cr_expect(alive(ka), "a's QEMU runs: its key stays");
	cr_expect_eq(hook_other_daemon("a", "reconnect", "begin", a), 0, "%s", out);
	load(&s);
	cr_expect_str_eq(state_find_domain(&s, UUIDQ1)->phase, "started");
	state_free(&s);
	/* reconnect killed: libvirtd then kills the guest and runs release */
	cr_expect_eq(hook_killed("before-save", "a", "reconnect", "begin", a), KILLED);
	cr_expect(alive(ka));
	stop(qa);
	cr_expect_eq(hook("a", "release", "end", a), 0, "%s", out);
	cr_expect(!alive(ka));
	cr_expect_eq(hook("b", "release", "end", b), 0, "%s", out);
	cr_expect_eq(unknown_live_keys(), 0);
	cr_expect_eq(state_size(), 0);
}

/* release killed between revoking the key and saving the state */
Test(crash, release_killed_after_revoking, .init = setup, .fini = teardown)
{
	const char *a = dom(0, "a", UUID1, attr, NULL);
	const char *b = dom(1, "b", UUID2, attr, NULL);
	key_serial_t ka;

	cr_assert_eq(hook("a", "prepare", "begin", a), 0, "%s", out);
	ka = ring_key("mktme-kvm:" UUID1);
	cr_assert_eq(hook_killed("key-revoked", "a", "release", "end", a), KILLED);
	cr_expect(!alive(ka), "revoked before the state says so");
	cr_expect_eq(state_size(), 2, "the state still names a and its dead key");
	/* libvirtd ignores a failed release; a starts again with a new key */
	starts_again("a", a);
	/* The same with a new libvirtd whose first run is another domain's */
	cr_assert_eq(hook("a", "prepare", "begin", a), 0, "%s", out);
	cr_assert_eq(hook_killed("key-revoked", "a", "release", "end", a), KILLED);
	cr_expect_eq(hook_other_daemon("b", "prepare", "begin", b), 0, "%s", out);
	cr_expect_eq(state_size(), 2, "only b and its key are left");
	cr_expect_eq(hook("b", "release", "end", b), 0, "%s", out);
	cr_expect_eq(state_size(), 0);
}

/* A tenant's shared key: a kill in one domain's phases never costs the others */
Test(crash, shared_key_outlives_a_killed_member, .init = setup, .fini = teardown)
{
	const char *a = dom(0, "a", UUIDQ2, shared, NULL);
	const char *b = dom(1, "b", UUID2, shared, NULL);
	key_serial_t k;
	pid_t qa;

	qa = fake_qemu(UUIDQ2);
	cr_assert_eq(hook("a", "prepare", "begin", a), 0, "%s", out);
	cr_assert_eq(hook("a", "started", "begin", a), 0, "%s", out);
	k = ring_key("tenant");
	cr_assert_eq(hook_killed("saved", "b", "prepare", "begin", b), KILLED);
	cr_expect_eq(hook("b", "release", "end", b), 0, "%s", out);
	cr_expect(alive(k), "a still uses the tenant key");
	cr_assert_eq(hook("b", "prepare", "begin", b), 0, "%s", out);
	cr_assert_eq(hook_killed("key-revoked", "b", "release", "end", b), 0,
		     "b's release revokes nothing while a uses the key: %s", out);
	cr_expect(alive(k));
	/* A new libvirtd reconnects a; the shared key stays */
	cr_expect_eq(hook_other_daemon("a", "reconnect", "begin", a), 0, "%s", out);
	cr_expect(alive(k));
	stop(qa);
	cr_expect_eq(hook("a", "release", "end", a), 0, "%s", out);
	cr_expect(!alive(k), "revoked with its last user");
	cr_expect_eq(unknown_live_keys(), 0);
	cr_expect_eq(state_size(), 0);
}
