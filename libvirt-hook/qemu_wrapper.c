// SPDX-License-Identifier: GPL-2.0
/*
 * mktme-kvm's QEMU wrapper: the <emulator> of encrypted domains
 * (/usr/libexec/mktme-kvm/qemu-system-x86_64).  libvirt runs it as QEMU;
 * it execs the real QEMU (/etc/mktme-kvm/wrapper.json) with every guest
 * RAM backend turned into memory-backend-mktme keyed with the key the
 * hook prepared for the domain (-uuid).  Without a domain (libvirt's
 * capability probes) it execs QEMU unchanged.  When anything is missing
 * it does not start QEMU: a domain that is to be encrypted never runs
 * with plaintext RAM.  See mktme-kvm-hook(8).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hook_config.h"
#include "hook_keys.h"
#include "hook_state.h"
#include "qemu_argv.h"
#include "qmp_proxy.h"

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("mktme-kvm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A listening UNIX socket at PATH (replacing a stale one), inheritable */
static int listen_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		fail("socket path too long: %s", path);
	strcpy(a.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4))
		fail("can't listen on %s: %s", path, strerror(errno));
	return fd;
}

/*
 * Memory hotplug: put the monitor relay (qmp_proxy.h) between libvirt and
 * QEMU.  QEMU gets a listening socket of ours in the hook's qmp directory;
 * the relay, a child that dies with QEMU, keeps libvirt's.  ARGV[IDX] is the
 * monitor's -chardev, rewritten here.
 */
static void start_relay(const struct hook_config *cfg, const char *uuid,
			char **argv, int idx, const char *path, int lfd, int serial)
{
	char qpath[4096], arg[4200], id[128];
	pid_t parent = getpid(), pid;
	int qfd;
	struct mkerr e;

	if (qemu_opt_value(argv[idx], "id", id, sizeof(id)))
		fail("the QMP monitor's -chardev has no id");
	snprintf(qpath, sizeof(qpath), "%s/qmp/%s.sock", cfg->state_dir, uuid);
	qfd = listen_at(qpath);
	if (lfd < 0)
		lfd = listen_at(path);	/* libvirt connects here */
	snprintf(arg, sizeof(arg), "socket,id=%s,fd=%d,server=on,wait=off", id, qfd);
	free(argv[idx]);
	argv[idx] = strdup(arg);
	if (!argv[idx])
		fail("out of memory");
	pid = fork();
	if (pid < 0)
		fail("can't start the monitor relay: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		if (dup2(lfd, 3) < 0)
			_exit(1);
		close_range(4, ~0U, 0);
		if (qmp_proxy_serve(3, qpath, serial, &e)) {
			fprintf(stderr, "mktme-kvm: monitor relay: %s\n", e.msg);
			_exit(1);
		}
		_exit(0);
	}
	close(lfd);
}

int main(int argc, char **argv)
{
	struct hook_config cfg;
	struct state_domain *d;
	struct state_key *k;
	struct state s;
	struct mkerr e;
	const char *uuid;
	char **nargv;
	int n;

	if (hook_config_load(&cfg, &e))
		fail("%s", e.msg);
	if (!strcmp(cfg.qemu, cfg.wrapper))
		fail("%s names the wrapper itself as QEMU", cfg.config_file);
	uuid = qemu_argv_uuid(argc, argv);
	if (!uuid) {
		/* libvirt probing QEMU's capabilities: QEMU as it is */
		argv[0] = cfg.qemu;
		execv(cfg.qemu, argv);
		fail("can't run QEMU %s: %s (set {\"qemu\": PATH} in %s)",
		     cfg.qemu, strerror(errno), cfg.config_file);
	}
	if (state_load(cfg.state_dir, &s, &e))
		fail("%s", e.msg);
	d = state_find_domain(&s, uuid);
	if (!d)
		fail("domain %s is to run under the mktme-kvm QEMU wrapper, but "
		     "the hook prepared no key for it: install the hook "
		     "(/etc/libvirt/hooks/qemu.d/mktme-kvm) and send libvirtd "
		     "SIGHUP, or run it unencrypted: mktmectl domain disable DOMAIN",
		     uuid);
	k = state_find_key(&s, d->key);
	if (keys_is(k->serial, cfg.key_type, k->description) != 1)
		fail("domain %s: its key %s (serial %d) is gone or not visible to "
		     "QEMU's user; start the domain again (the hook makes a new "
		     "one)", d->name, k->description, k->serial);
	nargv = qemu_argv_rewrite(argc, argv, k->serial, &n, &e);
	if (!nargv)
		fail("domain %s: %s", d->name, e.msg);
	if (qemu_argv_hotplug(argc, nargv)) {
		char path[4096];
		int idx, lfd;

		idx = qemu_argv_monitor(argc, nargv, path, sizeof(path), &lfd, &e);
		if (idx < 0)
			fail("domain %s: memory hotplug needs the monitor relay: %s",
			     d->name, e.msg);
		start_relay(&cfg, uuid, nargv, idx, path, lfd, k->serial);
	}
	state_free(&s);
	free(nargv[0]);
	nargv[0] = strdup(cfg.qemu);
	if (!nargv[0])
		fail("out of memory");
	execv(cfg.qemu, nargv);
	fail("can't run QEMU %s: %s (set {\"qemu\": PATH} in %s)", cfg.qemu,
	     strerror(errno), cfg.config_file);
}
