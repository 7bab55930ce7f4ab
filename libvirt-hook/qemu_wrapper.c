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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook_config.h"
#include "hook_keys.h"
#include "hook_state.h"
#include "qemu_argv.h"

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
	state_free(&s);
	free(nargv[0]);
	nargv[0] = strdup(cfg.qemu);
	if (!nargv[0])
		fail("out of memory");
	execv(cfg.qemu, nargv);
	fail("can't run QEMU %s: %s (set {\"qemu\": PATH} in %s)", cfg.qemu,
	     strerror(errno), cfg.config_file);
}
