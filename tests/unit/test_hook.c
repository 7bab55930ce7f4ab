// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the hook and QEMU wrapper programs as libvirtd runs them
 * (arguments, XML on stdin, exit status, stderr), with "user" keys
 * standing in for "mktme" keys and a private state directory and keyring.
 * The binaries are build/unit/mktme-kvm-hook and build/unit/qemu-wrapper
 * (ASan/UBSan builds), or $HOOK and $WRAPPER.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hook_harness.h"

Test(hook, life_cycle_of_a_domain_key, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "vm1", UUID1, "type='cpu' algorithm='aes-xts-256'", NULL);
	struct state s;
	key_serial_t k;

	cr_assert_eq(hook("vm1", "prepare", "begin", x), 0, "%s", out);
	cr_expect_str_eq(out, "", "prepare prints nothing");
	k = ring_key("mktme-kvm:" UUID1);
	cr_assert_gt(k, 0, "the key is in the keyring");
	load(&s);
	cr_expect_eq(s.nkeys, 1);
	cr_expect_eq(s.keys[0].serial, k);
	cr_expect(s.keys[0].created);
	cr_expect_str_eq(s.domains[0].phase, "prepared");
	state_free(&s);
	cr_expect_eq(hook("vm1", "start", "begin", x), 0, "%s", out);
	cr_expect_eq(hook("vm1", "started", "begin", x), 0, "%s", out);
	load(&s);
	cr_expect_str_eq(s.domains[0].phase, "started");
	state_free(&s);
	cr_expect_eq(hook("vm1", "stopped", "end", x), 0, "%s", out);
	cr_expect(alive(k), "stopped keeps the key until release");
	cr_expect_eq(hook("vm1", "release", "end", x), 0, "%s", out);
	cr_expect(!alive(k), "release revoked the key");
	load(&s);
	cr_expect_eq(s.nkeys + s.ndomains, 0);
	state_free(&s);
	/* release again, or of a domain never prepared: nothing to do */
	cr_expect_eq(hook("vm1", "release", "end", x), 0, "%s", out);
}

Test(hook, unmarked_domains_are_left_alone, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "plain", UUID1, NULL, "/usr/bin/qemu-system-x86_64");
	struct state s;

	cr_expect_eq(hook("plain", "prepare", "begin", x), 0, "%s", out);
	cr_expect_eq(hook("plain", "release", "end", x), 0, "%s", out);
	load(&s);
	cr_expect_eq(s.nkeys + s.ndomains, 0);
	state_free(&s);
	/* Operations the hook has nothing to do in */
	cr_expect_eq(hook("plain", "attach", "begin", x), 0);
	cr_expect_eq(hook("plain", "some-future-op", "begin", x), 0);
}

Test(hook, shared_key_lives_until_its_last_domain, .init = setup, .fini = teardown)
{
	const char *a = dom(0, "a", UUID1, "type='cpu' algorithm='aes-xts-128' key='tenant'", NULL);
	const char *b = dom(1, "b", UUID2, "type='cpu' algorithm='aes-xts-128' key='tenant'", NULL);
	key_serial_t k;

	cr_assert_eq(hook("a", "prepare", "begin", a), 0, "%s", out);
	cr_assert_eq(hook("b", "prepare", "begin", b), 0, "%s", out);
	k = ring_key("tenant");
	cr_assert_gt(k, 0);
	cr_expect_eq(hook("a", "release", "end", a), 0, "%s", out);
	cr_expect(alive(k), "b still uses the key");
	cr_expect_eq(hook("b", "release", "end", b), 0, "%s", out);
	cr_expect(!alive(k), "revoked with its last user");
}

Test(hook, shared_key_of_another_kind_refused, .init = setup, .fini = teardown)
{
	const char *a = dom(0, "a", UUID1, "type='cpu' algorithm='aes-xts-128' key='tenant'", NULL);
	const char *b = dom(1, "b", UUID2, "type='no-encrypt' algorithm='aes-xts-128' key='tenant'", NULL);

	cr_assert_eq(hook("a", "prepare", "begin", a), 0, "%s", out);
	cr_expect_eq(hook("b", "prepare", "begin", b), 1);
	cr_expect(strstr(out, "mktme-kvm: domain b: prepare: shared key tenant is cpu/aes-xts-128"),
		  "%s", out);
}

Test(hook, user_key_must_be_added_first, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "u", UUID1, "type='user' algorithm='aes-xts-128' key='mine'", NULL);
	key_serial_t r, k;
	struct state s;

	cr_expect_eq(hook("u", "prepare", "begin", x), 1);
	cr_expect(strstr(out, "user key mine is not in the"), "%s", out);
	cr_expect(strstr(out, "mktmectl key add --type user"), "%s", out);
	/* The operator adds it: the hook uses it, shares it with QEMU's group,
	 * and never revokes it (it did not create it) */
	r = keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", ring_name, 0);
	cr_assert_gt(r, 0);
	k = add_key("user", "mine", "k", 1, r);
	cr_assert_gt(k, 0);
	cr_expect_eq(hook("u", "prepare", "begin", x), 0, "%s", out);
	load(&s);
	cr_expect(!s.keys[0].created);
	state_free(&s);
	cr_expect_eq(hook("u", "release", "end", x), 0, "%s", out);
	cr_expect(alive(k), "the operator's key is not revoked");
}

Test(hook, refusals_leave_nothing_behind, .init = setup, .fini = teardown)
{
	static const char *bad[] = {
		"<domain",
		"<domain><name>x</name></domain>",
	};
	const char *wrong_emulator = dom(0, "w", UUID1, "type='cpu' algorithm='aes-xts-128'",
					 "/usr/bin/qemu-system-x86_64");
	const char *hugepages = "<domain><name>h</name><uuid>" UUID1 "</uuid><metadata>"
		"<m:encryption xmlns:m='" NS "' type='cpu' algorithm='aes-xts-128'/>"
		"</metadata><memoryBacking><hugepages/></memoryBacking></domain>";
	struct state s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(hook("x", "prepare", "begin", bad[i]), 1);
		cr_expect(!strncmp(out, "mktme-kvm: domain x: prepare: ", 30), "%s", out);
	}
	cr_expect_eq(hook("w", "prepare", "begin", wrong_emulator), 1);
	cr_expect(strstr(out, "run 'mktmectl domain enable w'"), "%s", out);
	cr_expect_eq(hook("h", "prepare", "begin", hugepages), 1);
	cr_expect(strstr(out, "hugepages"), "%s", out);
	cr_expect_eq(hook("x", "prepare", "begin", dom(0, "x", UUID1, "type='cpu'", NULL)), 1);
	cr_expect(strstr(out, "schema"), "%s", out);
	cr_expect_eq(ring_key("mktme-kvm:" UUID1), -1, "no key was made");
	load(&s);
	cr_expect_eq(s.nkeys + s.ndomains, 0);
	state_free(&s);
	/* An unmarked domain whose emulator is still the wrapper */
	cr_expect_eq(hook("p", "prepare", "begin", dom(0, "p", UUID1, NULL, NULL)), 1);
	cr_expect(strstr(out, "mktmectl domain disable p"), "%s", out);
}

Test(hook, corrupt_state_fails_closed_and_is_kept, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "vm1", UUID1, "type='cpu' algorithm='aes-xts-128'", NULL);
	char path[400], buf[64] = "";
	FILE *f;

	mkdir(state_dir, 0750);
	snprintf(path, sizeof(path), "%s/state.json", state_dir);
	put_file(state_dir, "state.json", "{garbage");
	cr_expect_eq(hook("vm1", "prepare", "begin", x), 1);
	cr_expect(strstr(out, "is not valid"), "%s", out);
	cr_expect_eq(ring_key("mktme-kvm:" UUID1), -1, "no key was made");
	f = fopen(path, "r");
	cr_expect_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_expect_str_eq(buf, "{garbage", "the file is left for the operator");
}

Test(hook, prepare_again_reuses_or_replaces, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "vm1", UUID1, "type='cpu' algorithm='aes-xts-128'", NULL);
	key_serial_t k1, k2;
	struct state s;

	cr_assert_eq(hook("vm1", "prepare", "begin", x), 0, "%s", out);
	k1 = ring_key("mktme-kvm:" UUID1);
	/* A start that died before release: the live key is reused */
	cr_assert_eq(hook("vm1", "prepare", "begin", x), 0, "%s", out);
	cr_expect_eq(ring_key("mktme-kvm:" UUID1), k1);
	/* Its key revoked behind the hook's back: a new one */
	keyctl_revoke(k1);
	cr_assert_eq(hook("vm1", "prepare", "begin", x), 0, "%s", out);
	k2 = ring_key("mktme-kvm:" UUID1);
	cr_expect(k2 > 0 && k2 != k1);
	load(&s);
	cr_expect_eq(s.nkeys, 1);
	cr_expect_eq(s.keys[0].serial, k2);
	cr_expect_eq(s.ndomains, 1);
	state_free(&s);
	cr_expect_eq(hook("vm1", "start", "begin", x), 0, "%s", out);
	keyctl_revoke(k2);
	cr_expect_eq(hook("vm1", "start", "begin", x), 1, "start checks the key");
	cr_expect(strstr(out, "was revoked after the hook prepared it"), "%s", out);
}

Test(hook, reconnect_recovers_and_reaps, .init = setup, .fini = teardown)
{
	const char *a = dom(0, "a", UUIDQ3, "type='cpu' algorithm='aes-xts-128'", NULL);
	const char *b = dom(1, "b", UUID2, "type='cpu' algorithm='aes-xts-128'", NULL);
	char path[400];
	key_serial_t ka, kb;
	struct state s;

	pid_t qemu_a;

	/* A stand-in for a's QEMU: a process whose command line has -uuid UUIDQ3 */
	qemu_a = fork();
	if (qemu_a == 0) {
		execl("/bin/sh", "sh", "-c", "sleep 60; true", "qemu", "-uuid", UUIDQ3,
		      (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(hook("a", "prepare", "begin", a), 0, "%s", out);
	cr_assert_eq(hook("a", "started", "begin", a), 0, "%s", out);
	cr_assert_eq(hook("b", "prepare", "begin", b), 0, "%s", out);
	cr_assert_eq(hook("b", "started", "begin", b), 0, "%s", out);
	ka = ring_key("mktme-kvm:" UUIDQ3);
	kb = ring_key("mktme-kvm:" UUID2);
	/* The state is lost (say /run was cleaned) while both run */
	snprintf(path, sizeof(path), "%s/state.json", state_dir);
	cr_assert_eq(unlink(path), 0);
	/* libvirtd restarts and reconnects to a: the key is found by name */
	cr_expect_eq(hook("a", "reconnect", "begin", a), 0, "%s", out);
	load(&s);
	cr_assert_eq(s.ndomains, 1);
	cr_expect_str_eq(s.domains[0].uuid, UUIDQ3);
	cr_expect_str_eq(s.domains[0].phase, "started");
	cr_expect_eq(s.keys[0].serial, ka);
	cr_expect(s.keys[0].created);
	state_free(&s);
	/* b's reconnect puts it back too; then a's reconnect reaps b, whose
	 * QEMU (no process with -uuid UUID2 runs here) is gone */
	cr_expect_eq(hook("b", "reconnect", "begin", b), 0, "%s", out);
	cr_expect_eq(hook("a", "reconnect", "begin", a), 0, "%s", out);
	load(&s);
	cr_expect_eq(s.ndomains, 1);
	state_free(&s);
	cr_expect(!alive(kb), "the gone domain's key was revoked");
	cr_expect(alive(ka));
	kill(qemu_a, SIGKILL);
	waitpid(qemu_a, NULL, 0);
}

Test(hook, incoming_migration_and_restore_checks, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "m", UUID1, "type='cpu' algorithm='aes-xts-128'", NULL);
	const char *wrong = dom(1, "m", UUID1, "type='cpu' algorithm='aes-xts-128'",
				"/usr/bin/qemu-system-x86_64");

	cr_expect_eq(hook("m", "migrate", "begin", x), 0, "%s", out);
	cr_expect_str_eq(out, "", "the XML is kept (nothing printed)");
	cr_expect_eq(hook("m", "restore", "begin", x), 0, "%s", out);
	cr_expect_eq(hook("m", "migrate", "begin", wrong), 1);
	cr_expect(strstr(out, "not the mktme-kvm QEMU wrapper"), "%s", out);
	/* The wrapper without the attribute: the migration is refused */
	cr_expect_eq(hook("m", "migrate", "begin", dom(2, "m", UUID1, NULL, NULL)), 1);
	cr_expect(strstr(out, "mktmectl domain disable m"), "%s", out);
	/* restore never fails (a failed restore hook makes libvirt delete a
	 * managed save image): prepare, which follows, refuses */
	cr_expect_eq(hook("m", "restore", "begin", wrong), 0, "%s", out);
	cr_expect_str_eq(out, "");
	cr_expect_eq(hook("m", "prepare", "begin", wrong), 1);
	cr_expect(strstr(out, "mktme-kvm: domain m: prepare: "), "%s", out);
	/* Nothing was prepared by these phases */
	cr_expect_eq(ring_key("mktme-kvm:" UUID1), -1);
}

Test(hook, incoming_to_a_host_without_the_wrapper, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "m", UUID1, "type='cpu' algorithm='aes-xts-128'",
			    "/nonexistent/mktme-kvm/qemu-system-x86_64");

	setenv("MKTME_KVM_WRAPPER", "/nonexistent/mktme-kvm/qemu-system-x86_64", 1);
	cr_expect_eq(hook("m", "migrate", "begin", x), 1);
	cr_expect(strstr(out, "is not installed on this host: install mktme-kvm here"),
		  "%s", out);
}

/*
 * save (release end saved) on the way out, then restore: restore begin,
 * prepare, start, started; the restored guest gets a key of its own, not
 * the one it was saved with
 */
Test(hook, restore_gets_a_new_key, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "r", UUID1, "type='cpu' algorithm='aes-xts-256'", NULL);
	key_serial_t before, after;

	cr_assert_eq(hook("r", "prepare", "begin", x), 0, "%s", out);
	cr_assert_eq(hook("r", "started", "begin", x), 0, "%s", out);
	before = ring_key("mktme-kvm:" UUID1);
	cr_expect_eq(hook("r", "stopped", "end", x), 0, "%s", out);
	cr_expect_eq(hook("r", "release", "end", x), 0, "%s", out);
	cr_expect(!alive(before), "the saved domain's key went with it");
	cr_expect_eq(hook("r", "restore", "begin", x), 0, "%s", out);
	cr_expect_str_eq(out, "", "the XML is kept (empty output)");
	cr_expect_eq(hook("r", "prepare", "begin", x), 0, "%s", out);
	cr_expect_eq(hook("r", "start", "begin", x), 0, "%s", out);
	cr_expect_eq(hook("r", "started", "begin", x), 0, "%s", out);
	after = ring_key("mktme-kvm:" UUID1);
	cr_expect(after > 0 && after != before, "a new key: %d, was %d", after, before);
	cr_expect_eq(hook("r", "release", "end", x), 0, "%s", out);
	cr_expect(!alive(after));
}

static int wrapper(char *const extra[], int n)
{
	char *argv[32];
	int i;

	argv[0] = wrapper_path;
	for (i = 0; i < n; i++)
		argv[i + 1] = extra[i];
	argv[n + 1] = NULL;
	return run(wrapper_path, argv, NULL);
}

Test(wrapper, probes_pass_through, .init = setup, .fini = teardown)
{
	char *probe[] = { "-machine", "none", "-qmp", "unix:/x" };

	cr_expect_eq(wrapper(probe, 4), 0, "%s", out);
	cr_expect_str_eq(out, "-machine none -qmp unix:/x\n");
}

Test(wrapper, keys_ram_of_a_prepared_domain, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "vm1", UUID1, "type='cpu' algorithm='aes-xts-128'", NULL);
	char *args[] = { "-uuid", UUID1, "-machine", "pc,memory-backend=pc.ram",
		"-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":67108864}" };
	char expect[512];

	cr_expect_eq(wrapper(args, 6), 1, "no key prepared yet: %s", out);
	cr_expect(strstr(out, "the hook prepared no key for it"), "%s", out);
	cr_assert_eq(hook("vm1", "prepare", "begin", x), 0, "%s", out);
	cr_expect_eq(wrapper(args, 6), 0, "%s", out);
	snprintf(expect, sizeof(expect), "-uuid " UUID1 " -machine pc,memory-backend=pc.ram "
		 "-object memory-backend-mktme,id=pc.ram,size=67108864,key=%d\n",
		 ring_key("mktme-kvm:" UUID1));
	cr_expect_str_eq(out, expect);
	/* The key revoked: QEMU does not start */
	keyctl_revoke(ring_key("mktme-kvm:" UUID1));
	cr_expect_eq(wrapper(args, 6), 1);
	cr_expect(strstr(out, "is gone"), "%s", out);
}

Test(wrapper, unkeyable_ram_does_not_start, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "vm1", UUID1, "type='cpu' algorithm='aes-xts-128'", NULL);
	char *args[] = { "-uuid", UUID1, "-machine", "pc,memory-backend=pc.ram",
		"-object", "{\"qom-type\":\"memory-backend-memfd\",\"id\":\"pc.ram\",\"size\":1}" };

	cr_assert_eq(hook("vm1", "prepare", "begin", x), 0, "%s", out);
	cr_expect_eq(wrapper(args, 6), 1);
	cr_expect(strstr(out, "mktme-kvm: domain vm1: QEMU was to get a memory backend"),
		  "%s", out);
}

Test(wrapper, memory_hotplug_gets_the_monitor_relay, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "vm1", UUID1, "type='cpu' algorithm='aes-xts-128'", NULL);
	char mon[400], chardev[500], qsock[400];
	struct stat st;
	char *args[] = { "-uuid", UUID1, "-machine", "pc,memory-backend=pc.ram",
		"-m", "size=65536k,slots=2,maxmem=262144k",
		"-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":67108864}",
		"-chardev", chardev, "-mon", "chardev=charmonitor,id=monitor,mode=control" };

	snprintf(mon, sizeof(mon), "%s/monitor.sock", dir);
	snprintf(chardev, sizeof(chardev),
		 "socket,id=charmonitor,path=%s,server=on,wait=off", mon);
	cr_assert_eq(hook("vm1", "prepare", "begin", x), 0, "%s", out);
	snprintf(qsock, sizeof(qsock), "%s/qmp", state_dir);
	cr_assert_eq(stat(qsock, &st), 0, "prepare made the relay's directory");
	cr_expect_eq(st.st_mode & 0777, 0770);
	cr_expect_eq(wrapper(args, 12), 0, "%s", out);
	cr_expect(strstr(out, "-chardev socket,id=charmonitor,fd="), "QEMU gets our socket: %s", out);
	cr_expect(strstr(out, ",server=on,wait=off -mon"), "%s", out);
	cr_expect_eq(stat(mon, &st), 0, "libvirt's monitor path is the relay's");
	cr_expect(S_ISSOCK(st.st_mode));
	snprintf(qsock, sizeof(qsock), "%s/qmp/" UUID1 ".sock", state_dir);
	cr_expect_eq(stat(qsock, &st), 0, "QEMU's socket is in the hook's directory");
}

/*
 * Live migration as libvirt runs the hook on two hosts (two state
 * directories and keyrings here): the destination's migrate, prepare and
 * start, which leave it a key of its own before QEMU starts and the
 * stream arrives; then the source's stopped and release (migrated).
 */
Test(hook, migration_rekeys_on_the_destination, .init = setup, .fini = teardown)
{
	const char *x = dom(0, "mig", UUID1, "type='cpu' algorithm='aes-xts-256'", NULL);
	char src_dir[320], src_ring[80], dst_ring[64];
	key_serial_t ks, kd;

	/* The source: the domain runs there with its key */
	snprintf(src_dir, sizeof(src_dir), "%s/source-run", dir);
	snprintf(src_ring, sizeof(src_ring), "%s-source", ring_name);
	snprintf(dst_ring, sizeof(dst_ring), "%s", ring_name);
	setenv("MKTME_KVM_STATE_DIR", src_dir, 1);
	setenv("MKTME_KVM_KEYRING", src_ring, 1);
	cr_assert_eq(hook("mig", "prepare", "begin", x), 0, "%s", out);
	cr_assert_eq(hook("mig", "started", "begin", x), 0, "%s", out);
	ks = keyctl_search(keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", src_ring, 0),
			   "user", "mktme-kvm:" UUID1, 0);
	cr_assert_gt(ks, 0);
	/* The destination */
	setenv("MKTME_KVM_STATE_DIR", state_dir, 1);
	setenv("MKTME_KVM_KEYRING", dst_ring, 1);
	cr_expect_eq(hook("mig", "migrate", "begin", x), 0, "%s", out);
	cr_expect_str_eq(out, "", "the XML is kept");
	cr_expect_eq(ring_key("mktme-kvm:" UUID1), -1, "migrate itself makes nothing");
	cr_expect_eq(hook("mig", "prepare", "begin", x), 0, "%s", out);
	cr_expect_eq(hook("mig", "start", "begin", x), 0, "%s", out);
	kd = ring_key("mktme-kvm:" UUID1);
	cr_expect(kd > 0 && kd != ks, "a key of the destination's before QEMU starts");
	cr_expect(alive(ks), "the source's key lives while the guest runs there");
	cr_expect_eq(hook("mig", "started", "begin", x), 0, "%s", out);
	/* The switch-over: the source lets go */
	setenv("MKTME_KVM_STATE_DIR", src_dir, 1);
	setenv("MKTME_KVM_KEYRING", src_ring, 1);
	cr_expect_eq(hook("mig", "stopped", "end", x), 0, "%s", out);
	cr_expect_eq(hook("mig", "release", "end", x), 0, "%s", out);
	cr_expect(!alive(ks), "the source's key is revoked");
	cr_expect(alive(kd), "the destination's is the guest's now");
	keyctl_unlink(keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", src_ring, 0),
		      KEY_SPEC_USER_KEYRING);
}
