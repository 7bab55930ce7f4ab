// SPDX-License-Identifier: GPL-2.0
/* The harness of the hook's program tests: see hook_harness.h */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hook_harness.h"

char dir[] = "/tmp/mktme-hook-test-XXXXXX";
char state_dir[300], ring_name[64], wrapper_path[300];
char out[16384];
static const char *bin(const char *env, const char *def)
{
	const char *v = getenv(env);

	return v ? v : def;
}

void setup(void)
{
	char cfg[400], *real;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(state_dir, sizeof(state_dir), "%s/run", dir);
	snprintf(ring_name, sizeof(ring_name), "mktme-kvm-hooktest-%d", getpid());
	/* The wrapper path the domains name: the wrapper under test */
	real = realpath(bin("WRAPPER", "build/unit/qemu-wrapper"), NULL);
	cr_assert_not_null(real, "no wrapper binary");
	snprintf(wrapper_path, sizeof(wrapper_path), "%s", real);
	free(real);
	/* "QEMU" is echo: the wrapper's exec shows the rewritten argv */
	snprintf(cfg, sizeof(cfg), "%s/wrapper.json", dir);
	put_file(dir, "wrapper.json", "{\"qemu\": \"/bin/echo\"}");
	setenv("MKTME_KVM_STATE_DIR", state_dir, 1);
	setenv("MKTME_KVM_SCHEMA", "libvirt-hook/domain-encryption.rng", 1);
	setenv("MKTME_KVM_WRAPPER", wrapper_path, 1);
	setenv("MKTME_KVM_CONFIG", cfg, 1);
	setenv("MKTME_KVM_KEY_TYPE", "user", 1);
	setenv("MKTME_KVM_KEYRING", ring_name, 1);
	setenv("MKTME_KVM_QEMU_GROUP", "root", 1);
}

void teardown(void)
{
	key_serial_t r = keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", ring_name, 0);

	if (r > 0) {
		keyctl_clear(r);
		keyctl_unlink(r, KEY_SPEC_USER_KEYRING);
	}
	remove_tree(dir);
}

int run(const char *prog, char *const argv[], const char *xml)
{
	int in[2], res[2], status;
	ssize_t n, len = 0;
	pid_t pid;

	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(res), 0);
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(res[1], 1);
		dup2(res[1], 2);
		close(in[1]);
		close(res[0]);
		execv(prog, argv);
		_exit(127);
	}
	close(in[0]);
	close(res[1]);
	if (xml && write(in[1], xml, strlen(xml)) != (ssize_t)strlen(xml))
		cr_log_warn("short write to the hook");
	close(in[1]);
	while ((n = read(res[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += n;
	out[len] = 0;
	close(res[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int hook(const char *name, const char *op, const char *sub, const char *xml)
{
	const char *prog = bin("HOOK", "build/unit/mktme-kvm-hook");
	char *const argv[] = { (char *)prog, (char *)name, (char *)op,
			       (char *)sub, "-", NULL };

	return run(prog, argv, xml);
}

static char xmlbuf[4][4096];

const char *dom(int slot, const char *name, const char *uuid,
		       const char *attrs, const char *emulator)
{
	char md[512] = "";

	if (attrs)
		snprintf(md, sizeof(md), "<metadata><mktme:encryption xmlns:mktme='"
			 NS "' %s/></metadata>", attrs);
	snprintf(xmlbuf[slot], sizeof(xmlbuf[slot]),
		 "<domain type='kvm'><name>%s</name><uuid>%s</uuid>%s"
		 "<memory unit='MiB'>64</memory><devices><emulator>%s</emulator>"
		 "</devices></domain>", name, uuid, md,
		 emulator ? emulator : wrapper_path);
	return xmlbuf[slot];
}

void load(struct state *s)
{
	struct mkerr e;

	cr_assert_eq(state_load(state_dir, s, &e), 0, "%s", e.msg);
}

key_serial_t ring_key(const char *desc)
{
	key_serial_t r = keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", ring_name, 0);

	return r > 0 ? keyctl_search(r, "user", desc, 0) : -1;
}

int alive(key_serial_t k)
{
	char *d = NULL;
	int ok = keyctl_describe_alloc(k, &d) >= 0;

	free(d);
	return ok;
}

int hook_other_daemon(const char *name, const char *op, const char *sub,
		      const char *xml)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(hook(name, op, sub, xml));
	cr_assert_gt(pid, 0);
	waitpid(pid, &status, 0);
	return WEXITSTATUS(status);
}

pid_t fake_qemu(const char *uuid)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "sleep 60; true", "qemu", "-uuid", uuid,
		      (char *)NULL);
		_exit(127);
	}
	cr_assert_gt(pid, 0);
	return pid;
}

void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
