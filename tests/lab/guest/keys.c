// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of mktme-kvm's kernel key service, on the patched 6.12 kernel
 * booted on the emulated TME-MK platform: enumeration (dmesg, sysfs, misc
 * cgroup), every payload form and error of the "mktme" key type, KeyID
 * exhaustion and reuse, revoke, an unprivileged caller, injected PCONFIG
 * errors, CPU offline/online across two packages, the KUnit results, and
 * the emulator's key table against the kernel's view.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab.h"

#define SYSFS	"/sys/kernel/mm/mktme/"
#define MISC_CG	"/tmp/misc-cgroup"
#define K128	"00112233445566778899aabbccddeeff"
#define K256	K128 "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

static int nr_keyids;

static char *read_file(const char *path)
{
	static char buf[1 << 18];
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	/* seq_file hands out a page per read() */
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	close(fd);
	if (n < 0)
		return NULL;
	buf[len] = 0;
	return buf;
}

static long read_long(const char *path)
{
	char *s = read_file(path);

	return s ? strtol(s, NULL, 10) : -1;
}

static bool dmesg_has(const char *needle)
{
	static char buf[1 << 20];
	int len = klogctl(3, buf, sizeof(buf) - 1);

	if (len < 0)
		return false;
	buf[len] = 0;
	return strstr(buf, needle);
}

static key_serial_t add(const char *desc, const char *payload)
{
	return add_key("mktme", desc, payload, strlen(payload),
		       KEY_SPEC_PROCESS_KEYRING);
}

/* The key's line of /proc/keys, where the type's ->describe() shows */
static char *proc_keys_line(key_serial_t key)
{
	static char line[512];
	char id[16], *s = read_file("/proc/keys"), *l;

	snprintf(id, sizeof(id), "%08x ", key);
	for (l = s ? strtok(s, "\n") : NULL; l; l = strtok(NULL, "\n")) {
		if (!strncmp(l, id, strlen(id))) {
			snprintf(line, sizeof(line), "%s", l);
			return line;
		}
	}
	return NULL;
}

/* The KeyID of a key, from /proc/keys ("... desc: keyid=N ...") */
static int keyid_of(key_serial_t key)
{
	char *l = proc_keys_line(key), *p = l ? strstr(l, "keyid=") : NULL;

	return p ? atoi(p + 6) : -1;
}

/* Wait for released KeyIDs to be flushed, cleared and freed */
static bool wait_in_use(long want)
{
	for (int i = 0; i < 1000; i++) {
		if (read_long(SYSFS "keyids_in_use") == want)
			return true;
		usleep(10000);
	}
	return false;
}

/* Is keyid programmed with command/algorithm on every package? */
static bool emulator_has(int keyid, const char *command, const char *alg)
{
	json_object *info = lab_qmp("query-mktme", NULL);
	bool all = lab_key_table_has(info, -1, keyid, command, alg);

	json_object_put(info);
	return all;
}

static void test_enumeration(void)
{
	char *s;

	tap_ok(dmesg_has("x86/mktme: BIOS enabled: x86_phys_bits reduced by 6"),
	       "dmesg: x86_phys_bits reduced by 6 (any vendor)");
	tap_ok(dmesg_has("x86/mktme: 6 KeyID bits at bit 40, 63 KeyIDs, "
			 "AES-XTS-128 AES-XTS-256"),
	       "dmesg: KeyID bits, shift, KeyIDs and algorithms");
	tap_ok(read_long(SYSFS "keyid_bits") == 6, "sysfs keyid_bits is 6");
	nr_keyids = read_long(SYSFS "keyids_total");
	tap_ok(nr_keyids == 63, "sysfs keyids_total is 63");
	tap_ok(read_long(SYSFS "keyids_in_use") == 0,
	       "sysfs keyids_in_use is 0 at boot");
	s = read_file(SYSFS "algorithms");
	tap_ok(s && !strcmp(s, "aes-xts-128 aes-xts-256\n"),
	       "sysfs algorithms: aes-xts-128 aes-xts-256");
	mkdir(MISC_CG, 0755);
	if (mount("misc", MISC_CG, "cgroup", 0, "misc"))
		tap_diag("mount the misc cgroup: %s", strerror(errno));
	s = read_file(MISC_CG "/misc.capacity");
	if (!tap_ok(s && strstr(s, "mktme 63"),
		    "misc cgroup: misc.capacity has mktme 63"))
		tap_diag("misc.capacity: %s", s ? s : strerror(errno));
}

struct payload_case {
	const char *payload;
	const char *command, *alg, *type;
};

static const struct payload_case valid[] = {
	{ "type=cpu algorithm=aes-xts-128", "set-key-random", "aes-xts-128", "cpu" },
	{ "type=cpu algorithm=aes-xts-256", "set-key-random", "aes-xts-256", "cpu" },
	{ "type=user algorithm=aes-xts-128 key=" K128 " tweak=" K128,
	  "set-key-direct", "aes-xts-128", "user" },
	{ "type=user algorithm=aes-xts-256 key=" K256 " tweak=" K256,
	  "set-key-direct", "aes-xts-256", "user" },
	{ "type=no-encrypt algorithm=aes-xts-128", "no-encrypt", "aes-xts-128",
	  "no-encrypt" },
};

static const char *const malformed[] = {
	"", "type=cpu", "algorithm=aes-xts-128", "type=cpu algorithm=aes-xts-64",
	"type=tpm algorithm=aes-xts-128",
	"type=cpu algorithm=aes-xts-128 type=cpu",
	"type=cpu algorithm=aes-xts-128 key=" K128 " tweak=" K128,
	"type=user algorithm=aes-xts-128",
	"type=user algorithm=aes-xts-128 key=" K128,
	"type=user algorithm=aes-xts-256 key=" K128 " tweak=" K128,
	"type=user algorithm=aes-xts-128 key=" K256 " tweak=" K256,
	"type=user algorithm=aes-xts-128 key=zz112233445566778899aabbccddeeff tweak=" K128,
	"type=cpu algorithm=aes-xts-128 extra=1",
};

static void test_payloads(void)
{
	char *d = NULL, *proc, expect[128];
	void *buf = NULL;
	size_t i;
	long r;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		key_serial_t k = add("payload", valid[i].payload);
		int keyid = keyid_of(k);

		tap_ok(k > 0 && keyid > 0 && keyid <= nr_keyids,
		       "add_key \"%.40s...\": KeyID %d", valid[i].payload,
		       keyid);
		snprintf(expect, sizeof(expect), "payload: keyid=%d type=%s "
			 "algorithm=%s", keyid, valid[i].type, valid[i].alg);
		proc = proc_keys_line(k);
		tap_ok(proc && strstr(proc, " mktme ") && strstr(proc, expect) &&
		       strstr(proc, " users=1"),
		       "/proc/keys: mktme ... %s users=1", expect);
		tap_ok(keyctl_describe_alloc(k, &d) > 0 &&
		       !strncmp(d, "mktme;", 6) && strstr(d, ";payload"),
		       "keyctl describe: type mktme, description");
		free(d);
		d = NULL;
		tap_ok(emulator_has(keyid, valid[i].command, valid[i].alg),
		       "the emulator has KeyID %d as %s %s on every package",
		       keyid, valid[i].command, valid[i].alg);
		errno = 0;
		tap_ok(keyctl_read_alloc(k, &buf) < 0 && errno == EOPNOTSUPP,
		       "keyctl read: EOPNOTSUPP, key bytes never come back");
		errno = 0;
		r = keyctl_update(k, "type=cpu algorithm=aes-xts-128", 30);
		tap_ok(r < 0 && errno == EACCES,
		       "keyctl update: EACCES, an mktme key is never writable "
		       "(%ld, %s)", r, strerror(errno));
		keyctl_revoke(k);
	}
	tap_ok(wait_in_use(0), "revoked keys' KeyIDs are released");
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		errno = 0;
		tap_ok(add("bad", malformed[i]) < 0 && errno == EINVAL,
		       "malformed \"%s\": EINVAL", malformed[i]);
	}
	tap_ok(read_long(SYSFS "keyids_in_use") == 0,
	       "no KeyID leaked by malformed payloads");
}

static void test_unprivileged(void)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		/* uid 1000 without CAP_SYS_RESOURCE */
		if (setresuid(1000, 1000, 1000))
			_exit(3);
		errno = 0;
		if (add("unpriv", "type=cpu algorithm=aes-xts-128") >= 0)
			_exit(1);
		_exit(errno == EACCES ? 0 : 2);
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "an unprivileged caller gets EACCES (exit %d)",
	       WEXITSTATUS(status));
}

static void test_exhaustion(void)
{
	key_serial_t *keys = calloc(nr_keyids + 1, sizeof(*keys)), k;
	int n = 0, reused;
	char *s, *line;

	while (n <= nr_keyids) {
		char desc[32];

		/* one description each: add_key() replaces a namesake */
		snprintf(desc, sizeof(desc), "many-%d", n);
		keys[n] = add(desc, "type=no-encrypt algorithm=aes-xts-128");
		if (keys[n] < 0)
			break;
		n++;
	}
	tap_ok(n == nr_keyids && errno == ENOKEY,
	       "exhaustion: %d keys, then ENOKEY", n);
	tap_ok(read_long(SYSFS "keyids_in_use") == nr_keyids,
	       "sysfs keyids_in_use is %d", nr_keyids);
	s = read_file(MISC_CG "/misc.current");
	tap_ok(s && strstr(s, "mktme 63"), "misc.current has mktme 63");
	reused = keyid_of(keys[10]);
	keyctl_revoke(keys[10]);
	/* At once: the KeyID is on its way back, and add_key() waits for it */
	errno = 0;
	k = add("again", "type=cpu algorithm=aes-xts-256");
	tap_ok(k > 0 && reused > 0 && keyid_of(k) == reused,
	       "at capacity, add_key() right after a revoke gets the KeyID "
	       "being released (%d, %s)", reused, k > 0 ? "ok" : strerror(errno));
	line = proc_keys_line(keys[10]);
	tap_ok(line && strstr(line, ": keyid=released ") &&
	       !strstr(line, " users="),
	       "/proc/keys: the revoked key says keyid=released, not the "
	       "KeyID another key now has");
	if (line && !strstr(line, "keyid=released"))
		tap_diag("%s", line);
	keyctl_invalidate(keys[10]);
	keys[10] = k;
	for (int i = 0; i < n; i++)
		keyctl_invalidate(keys[i]);
	tap_ok(wait_in_use(0), "invalidated keys release their KeyIDs");
	free(keys);
}

/*
 * The misc cgroup as a scheduler reads it on cgroup v2 (Kubernetes node
 * feature discovery, KubeVirt): misc.capacity and misc.current at the root
 * of the cgroup2 mount, which appear once "+misc" is in the root's
 * cgroup.subtree_control, and misc.max / misc.events in a child group.
 */
static bool cg_write(const char *dir, const char *file, const char *s)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return lab_write_file(path, s) == 0;
}

static char *cg_read(const char *dir, const char *file)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return read_file(path);
}

static void test_cgroup2(void)
{
	const char *root = "/tmp/cgroup2", *guests = "/tmp/cgroup2/guests";
	key_serial_t k1;
	char procs[16], *s;
	int status, fds[2];
	pid_t pid;

	/* The misc controller leaves the v1 hierarchy of test_enumeration() */
	tap_ok(umount(MISC_CG) == 0, "cgroup v1: the misc hierarchy unmounted");
	mkdir(root, 0755);
	if (!tap_ok(mount("cgroup2", root, "cgroup2", 0, NULL) == 0,
		    "cgroup v2: mounted"))
		return;
	/* An unmounted v1 hierarchy goes away, and frees misc, after RCU */
	for (int i = 0; i < 500; i++) {
		s = cg_read(root, "cgroup.controllers");
		if (s && strstr(s, "misc"))
			break;
		usleep(10000);
	}
	tap_ok(s && strstr(s, "misc"), "cgroup v2: the root offers misc");
	tap_ok(cg_write(root, "cgroup.subtree_control", "+misc"),
	       "cgroup v2: +misc in the root's cgroup.subtree_control");
	s = cg_read(root, "misc.capacity");
	tap_ok(s && strstr(s, "mktme 63"), "cgroup v2: root misc.capacity has "
	       "mktme 63 (%s)", s ? "read" : strerror(errno));
	s = cg_read(root, "misc.current");
	tap_ok(s && strstr(s, "mktme 0"), "cgroup v2: root misc.current has "
	       "mktme 0");

	mkdir(guests, 0755);
	tap_ok(cg_write(guests, "misc.max", "mktme 1"),
	       "cgroup v2: a child group \"guests\" with misc.max mktme 1");
	if (pipe(fds))
		return;
	pid = fork();
	if (pid == 0) {
		char c;

		/* Wait until the parent has moved us, then take two keys */
		close(fds[1]);
		if (read(fds[0], &c, 1) != 1)
			_exit(3);
		if (add("cg-1", "type=no-encrypt algorithm=aes-xts-128") < 0)
			_exit(1);
		errno = 0;
		if (add("cg-2", "type=no-encrypt algorithm=aes-xts-128") >= 0)
			_exit(2);
		_exit(errno == ENOKEY ? 0 : 4);
	}
	close(fds[0]);
	snprintf(procs, sizeof(procs), "%d", pid);
	tap_ok(cg_write(guests, "cgroup.procs", procs), "cgroup v2: a process "
	       "moved into \"guests\"");
	if (write(fds[1], "x", 1) != 1)
		tap_diag("could not start the child");
	close(fds[1]);
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "cgroup v2: in \"guests\", a first key is charged and a second "
	       "gets ENOKEY (exit %d)", WEXITSTATUS(status));
	s = cg_read(guests, "misc.events");
	tap_ok(s && strstr(s, "mktme.max 1"),
	       "cgroup v2: guests misc.events counts mktme.max 1");
	/* The key was in the child's process keyring: it went with it */
	tap_ok(wait_in_use(0), "cgroup v2: the child's key released with it");
	s = cg_read(guests, "misc.current");
	tap_ok(s && strstr(s, "mktme 0"), "cgroup v2: guests misc.current "
	       "back to mktme 0 once the KeyID is released");
	k1 = add("cg-root", "type=no-encrypt algorithm=aes-xts-128");
	s = cg_read(root, "misc.current");
	tap_ok(k1 > 0 && s && strstr(s, "mktme 1"),
	       "cgroup v2: root misc.current counts a key of the root group");
	keyctl_invalidate(k1);
	wait_in_use(0);
	rmdir(guests);
	umount(root);
}

static void test_injected_errors(void)
{
	key_serial_t k;

	lab_qmp_args("mktme-inject-pconfig-error",
		     "{\"status\":\"device-busy\",\"count\":3}");
	k = add("retry", "type=cpu algorithm=aes-xts-128");
	tap_ok(k > 0, "PCONFIG: 3 DEVICE_BUSY are retried");
	keyctl_invalidate(k);
	wait_in_use(0);
	lab_qmp_args("mktme-inject-pconfig-error",
		     "{\"status\":\"entropy-error\",\"count\":1000}");
	errno = 0;
	k = add("fail", "type=cpu algorithm=aes-xts-128");
	tap_ok(k < 0 && errno == EBUSY,
	       "PCONFIG: ENTROPY_ERROR past the retries fails with EBUSY");
	lab_qmp_args("mktme-inject-pconfig-error",
		     "{\"status\":\"entropy-error\",\"count\":0}");
	tap_ok(wait_in_use(0),
	       "the failed KeyID is cleared once PCONFIG works again");
	tap_ok(dmesg_has("still failing after 10 retries"),
	       "dmesg names the PCONFIG failure");
}

/*
 * Every package must be able to program and clear every KeyID: the last
 * CPU of a package stays online while any KeyID is in use, and no KeyID is
 * allocated while a package has no online CPU.
 */
static void test_hotplug(void)
{
	const char *cpu1 = "/sys/devices/system/cpu/cpu1/online";
	key_serial_t user, k;
	int keyid;

	if (sysconf(_SC_NPROCESSORS_CONF) < 2) {
		tap_skip("needs 2 sockets", "CPU offline/online");
		return;
	}
	user = add("user", "type=user algorithm=aes-xts-128 key=" K128
		   " tweak=" K128);
	tap_ok(user > 0 && lab_write_file(cpu1, "0") == -EBUSY &&
	       dmesg_has("KeyIDs are in use: refusing to offline it"),
	       "offline the last CPU of package 1 while a user key is in use: "
	       "EBUSY (dmesg says why)");
	keyctl_invalidate(user);
	tap_ok(wait_in_use(0), "the key is released");
	tap_ok(lab_write_file(cpu1, "0") == 0,
	       "with no KeyID in use, the last CPU of package 1 goes offline");
	errno = 0;
	k = add("no-package", "type=no-encrypt algorithm=aes-xts-128");
	tap_ok(k < 0 && errno == EBUSY &&
	       dmesg_has("a package has no online CPU to program KeyIDs with"),
	       "add_key while package 1 has no online CPU: EBUSY (dmesg says "
	       "why)");
	tap_ok(read_long(SYSFS "keyids_in_use") == 0, "nothing allocated");
	tap_ok(lab_write_file(cpu1, "1") == 0, "CPU 1 online again");
	k = add("both-packages", "type=user algorithm=aes-xts-128 key=" K128
		" tweak=" K128);
	keyid = keyid_of(k);
	tap_ok(k > 0 && emulator_has(keyid, "set-key-direct", "aes-xts-128"),
	       "then a key is programmed on both packages (KeyID %d)", keyid);
	keyctl_invalidate(k);
	tap_ok(wait_in_use(0), "keys released");
}

/*
 * Suspend to RAM: the platform forgets every key (the emulator clears its
 * tables on the wake-up reset); the kernel must program them again.
 */
static void test_resume(void)
{
	key_serial_t user, cpu;
	int ku, kc, r;
	char *states = read_file("/sys/power/state");

	if (!states || !strstr(states, "mem")) {
		tap_skip("no suspend to RAM", "KeyIDs restored on resume");
		return;
	}
	user = add("resume-user", "type=user algorithm=aes-xts-256 key=" K256
		   " tweak=" K256);
	cpu = add("resume-cpu", "type=cpu algorithm=aes-xts-128");
	ku = keyid_of(user);
	kc = keyid_of(cpu);
	/* S3, not s2idle: the platform must lose its keys */
	lab_write_file("/sys/power/mem_sleep", "deep");
	r = lab_wakeup_after(3);
	if (!r)
		r = lab_write_file("/sys/power/state", "mem");
	if (!tap_ok(r == 0, "suspend to RAM (S3) and wake up (%s)", strerror(-r))) {
		tap_diag("mem_sleep: %s", read_file("/sys/power/mem_sleep") ?: "-");
		return;
	}
	tap_ok(emulator_has(ku, "set-key-direct", "aes-xts-256"),
	       "resume: user KeyID %d is programmed again on every package", ku);
	tap_ok(emulator_has(kc, "set-key-random", "aes-xts-128"),
	       "resume: CPU KeyID %d gets a new CPU-generated key", kc);
	tap_ok(dmesg_has("x86/mktme: restored 2 KeyIDs on resume") &&
	       !dmesg_has("KeyIDs not restored"),
	       "resume: the kernel reprogrammed both KeyIDs on the boot "
	       "package (dmesg)");
	if (sysconf(_SC_NPROCESSORS_CONF) > 1)
		tap_ok(dmesg_has("x86/mktme: programmed 2 KeyIDs on package 1"),
		       "resume: and on package 1 when its CPU came back online "
		       "(dmesg)");
	keyctl_invalidate(user);
	keyctl_invalidate(cpu);
	tap_ok(wait_in_use(0), "keys released after resume");
}

/* Re-emit the KUnit suite's results, run at boot */
static void test_kunit(void)
{
	char *s = read_file("/sys/kernel/debug/kunit/mktme/results"), *line;
	int n = 0;

	if (!s) {
		tap_ok(false, "KUnit results of the mktme suite");
		return;
	}
	for (line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
		char *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncmp(p, "ok ", 3) && !strstr(p, "mktme\n") &&
		    strstr(p, "mktme_test_")) {
			n++;
			if (strstr(p, "# SKIP"))
				tap_skip("as KUnit said", "kunit: %s", p);
			else
				tap_ok(true, "kunit: %s", p);
		} else if (!strncmp(p, "not ok ", 7) && strstr(p, "mktme_test_")) {
			n++;
			tap_ok(false, "kunit: %s", p);
		}
	}
	tap_ok(n == 10, "KUnit: all 10 mktme cases reported (%d)", n);
}

int main(void)
{
	tap_begin();
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	if (!tap_ok(access(SYSFS, F_OK) == 0, "mktme enumerated (%s)", SYSFS))
		return tap_end();
	test_kunit();
	test_enumeration();
	test_payloads();
	test_unprivileged();
	test_exhaustion();
	test_cgroup2();
	test_injected_errors();
	test_hotplug();
	test_resume();
	return tap_end();
}
