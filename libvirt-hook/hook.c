// SPDX-License-Identifier: GPL-2.0
/*
 * mktme-kvm's libvirt hook (/etc/libvirt/hooks/qemu.d/mktme-kvm): gives
 * each domain marked <mktme:encryption> its TME-MK key before QEMU starts,
 * and revokes it once nothing uses it.  See mktme-kvm-hook(8).
 *
 *   HOOK DOMAIN OPERATION SUB-OPERATION EXTRA < domain XML
 *
 * Exit status 0, or 1 with one line on stderr naming the cause and the
 * fix (libvirt shows it in the error of the virsh command).  The hook
 * never calls back into libvirt.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain_xml.h"
#include "hook_config.h"
#include "hook_keys.h"
#include "hook_state.h"
#include "../tools/mktmectl/mktme.h"

#define XML_MAX (64 * 1024 * 1024)

struct hook {
	struct hook_config cfg;
	struct domain_info dom;
	const char *op;
	char daemon[32];	/* the libvirtd running us: "PID:STARTTIME" */
	struct mkerr err;
};

struct operation {
	int (*action)(struct hook *h);
	const char *name;
};

/* The description of the key DOM uses: its own, or the shared one named */
static void key_description(const struct domain_info *d, char *buf, size_t len)
{
	if (d->attr.key[0])
		snprintf(buf, len, "%s", d->attr.key);
	else
		snprintf(buf, len, HOOK_KEY_PREFIX "%s", d->uuid);
}

static int is_hook_key(const char *description)
{
	return !strncmp(description, HOOK_KEY_PREFIX, strlen(HOOK_KEY_PREFIX));
}

/*
 * The libvirtd instance running the hook (its parent): "PID:STARTTIME",
 * the start time from /proc/PID/stat (field 22, after the command name in
 * parentheses), so that a restarted libvirtd with a reused PID differs.
 */
static void daemon_id(char *buf, size_t len)
{
	unsigned long long start = 0;
	char path[64], line[1024], *p;
	pid_t ppid = getppid();
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)ppid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) &&
		    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			   "%*u %*u %*d %*d %*d %*d %*d %*d %llu", &start) != 1)
			start = 0;
		fclose(f);
	}
	snprintf(buf, len, "%d:%llu", (int)ppid, start);
}

/*
 * Fault injection for the crash-safety tests (tests/unit/test_hook_crash.c):
 * MKTME_KVM_CRASH_AT=OPERATION:POINT kills the hook with SIGKILL at that
 * point.  libvirtd runs hooks with a clean environment.
 */
static void crash_point(const struct hook *h, const char *point)
{
	const char *at = getenv("MKTME_KVM_CRASH_AT");
	size_t n = strlen(h->op);

	if (at && !strncmp(at, h->op, n) && at[n] == ':' && !strcmp(at + n + 1, point))
		raise(SIGKILL);
}

/*
 * A key's type and algorithm as the kernel shows them in /proc/keys
 * (only mktme keys show them); 0 when found
 */
static int key_kind(const struct hook *h, key_serial_t serial, char *type,
		    char *alg, size_t len)
{
	struct mktme_key_info *keys;
	int n, i, ret = -1;

	if (strcmp(h->cfg.key_type, "mktme"))
		return -1;
	n = mktme_keys_read(MKTME_PROC_KEYS, &keys);
	for (i = 0; i < n; i++) {
		if ((key_serial_t)keys[i].serial == serial) {
			snprintf(type, len, "%s", keys[i].type);
			snprintf(alg, len, "%s", keys[i].algorithm);
			ret = 0;
		}
	}
	if (n >= 0)
		free(keys);
	return ret;
}

/*
 * Drop DOM's entry from S, revoking its key if the hook created it and no
 * other domain uses it.  The key is revoked before the state says so: a
 * hook killed in between leaves a state naming a dead key, which the next
 * prepare or reconnect drops, never a live key nobody knows.
 */
static int release_domain(struct hook *h, struct state *s, const char *uuid,
			  key_serial_t ring)
{
	struct state_domain *d = state_find_domain(s, uuid);
	struct state_key *k;
	char desc[sizeof(d->key)];

	if (!d)
		return 0;
	snprintf(desc, sizeof(desc), "%s", d->key);
	state_remove_domain(s, uuid);
	k = state_find_key(s, desc);
	if (!k || state_key_users(s, desc) > 0)
		return 0;
	if (k->created && keys_revoke(ring, k->serial, &h->err))
		return -1;
	crash_point(h, "key-revoked");
	state_remove_key(s, desc);
	return 0;
}

/* Is a QEMU with "-uuid UUID" running?  (/proc/PID/cmdline) */
static bool qemu_running(const char *uuid)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	bool found = false;

	if (!proc)
		return true;	/* can't tell: keep the entry */
	while (!found && (de = readdir(proc))) {
		char path[300], buf[8192];
		ssize_t n, i;
		int fd;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		for (i = 0; i < n && !found; i += strlen(buf + i) + 1)
			if (!strcmp(buf + i, "-uuid") && i + 6 < n &&
			    !strcasecmp(buf + i + 6, uuid))
				found = true;
	}
	closedir(proc);
	return found;
}

/* Remove every domain entry of S naming the key DESC */
static void drop_users(struct state *s, const char *desc)
{
	size_t i = 0;

	while (i < s->ndomains) {
		if (!strcmp(s->domains[i].key, desc))
			state_remove_domain(s, s->domains[i].uuid);
		else
			i++;
	}
}

/*
 * Bring S in line with the keyring and the running QEMUs, under the lock,
 * before a phase changes it; what a killed hook, libvirtd or QEMU left:
 *
 * - a pending key (a hook killed around add_key()): looked up by name;
 *   found, it is the hook's (the intent was written first); not found,
 *   it was never made, and the start that wanted it failed with the hook;
 * - entries of domains that are not a start in progress under this
 *   libvirtd (prepared by another libvirtd instance, or on RECONNECTING
 *   any that is not prepared by this one) and whose QEMU is gone:
 *   released as release would have;
 * - keys no domain uses: revoked if the hook created them (and alive).
 *
 * SELF (the domain of this run) is left to the phase.  A key that a
 * running QEMU may use is never revoked.
 */
static int reconcile(struct hook *h, struct state *s, key_serial_t ring,
		     const char *self, bool reconnecting)
{
	key_serial_t serial;
	size_t i;

	for (i = 0; i < s->nkeys;) {
		struct state_key *k = &s->keys[i];

		if (k->serial) {
			i++;
			continue;
		}
		serial = keys_find(ring, h->cfg.key_type, k->description, &h->err);
		if (serial < 0)
			return -1;
		if (serial > 0) {
			k->serial = serial;
			i++;
			continue;
		}
		drop_users(s, k->description);
		state_remove_key(s, k->description);
	}
	for (i = 0; i < s->ndomains;) {
		struct state_domain *d = &s->domains[i];
		bool ours = !strcmp(d->daemon, h->daemon);

		if (strcasecmp(d->uuid, self) && (reconnecting || !ours) &&
		    !(ours && !strcmp(d->phase, "prepared")) &&
		    !qemu_running(d->uuid)) {
			if (release_domain(h, s, d->uuid, ring))
				return -1;
			continue;
		}
		i++;
	}
	for (i = 0; i < s->nkeys;) {
		struct state_key *k = &s->keys[i];

		if (state_key_users(s, k->description)) {
			i++;
			continue;
		}
		if (k->created && keys_is(k->serial, h->cfg.key_type,
					  k->description) == 1 &&
		    keys_revoke(ring, k->serial, &h->err))
			return -1;
		state_remove_key(s, k->description);
	}
	return 0;
}

/* Write S if it differs from BEFORE (its text when loaded) */
static int save_if_changed(struct hook *h, const struct state *s,
			   const char *before)
{
	char *now = state_format(s);
	int ret;

	if (!now)
		return mkerr_set(&h->err, "out of memory");
	ret = before && !strcmp(before, now) ? 0 :
	      state_save(h->cfg.state_dir, s, h->cfg.qemu_group, &h->err);
	free(now);
	return ret;
}

/*
 * Every KeyID is in use, or libvirtd's misc cgroup allows no more: say
 * which, with the numbers, who holds them and the fixes (one line)
 */
static void no_keyid_error(struct hook *h, const struct state *s,
			   const char *desc)
{
	struct mktme_platform p;
	char holders[512];

	state_holders_text(s, holders, sizeof(holders));
	if (!mktme_platform_read(MKTME_SYSFS, &p) &&
	    p.keyids_in_use < p.keyids_total) {
		mkerr_set(&h->err, "can't create mktme key %s: the misc cgroup of "
			  "libvirtd allows it no more mktme KeyIDs (%u of %u in "
			  "use on this host): raise the mktme entry of misc.max "
			  "in libvirtd's cgroup (cat /proc/$(pidof libvirtd)/"
			  "cgroup), or stop an encrypted domain; %s", desc,
			  p.keyids_in_use, p.keyids_total, holders);
		return;
	}
	mkerr_set(&h->err, "can't create mktme key %s: every KeyID is in use "
		  "(mktmectl status; mktmectl keys shows who holds them): stop "
		  "an encrypted domain, share a key between a tenant's domains "
		  "(mktmectl domain enable --key NAME), or raise the misc "
		  "cgroup's mktme limit; %s", desc, holders);
}

/* Find or create the key DESC for H's domain; its state entry */
static struct state_key *get_key(struct hook *h, struct state *s,
				 key_serial_t ring, const char *desc,
				 bool *created_now)
{
	const struct mktme_attr *a = &h->dom.attr;
	struct state_key *k = state_find_key(s, desc), nk;
	char payload[MKTME_PAYLOAD_MAX], type[16], alg[16];
	const char *why = NULL;
	key_serial_t serial;

	*created_now = false;
	if (k && keys_is(k->serial, h->cfg.key_type, desc) != 1) {
		if (state_key_users(s, desc) > 0) {
			mkerr_set(&h->err, "key %s (serial %d), which running domains "
				  "share, was revoked or removed outside the hook: "
				  "stop the domains using it, then start this one",
				  desc, k->serial);
			return NULL;
		}
		state_remove_key(s, desc);
		k = NULL;
	}
	if (k) {
		if (strcmp(k->type, a->type) || strcmp(k->algorithm, a->algorithm)) {
			mkerr_set(&h->err, "shared key %s is %s/%s, but this domain "
				  "asks for %s/%s: use the same type and algorithm "
				  "as the other domains sharing it, or another key name",
				  desc, k->type, k->algorithm, a->type, a->algorithm);
			return NULL;
		}
		return k;
	}
	memset(&nk, 0, sizeof(nk));
	snprintf(nk.description, sizeof(nk.description), "%s", desc);
	snprintf(nk.type, sizeof(nk.type), "%s", a->type);
	snprintf(nk.algorithm, sizeof(nk.algorithm), "%s", a->algorithm);
	serial = keys_find(ring, h->cfg.key_type, desc, &h->err);
	if (serial < 0)
		return NULL;
	if (serial > 0) {
		/* Left by a killed hook (ours), or added by the operator */
		nk.created = is_hook_key(desc);
		if (keys_share(serial, h->cfg.qemu_group, &h->err))
			return NULL;
		if (!key_kind(h, serial, type, alg, sizeof(type)) &&
		    (strcmp(type, a->type) || strcmp(alg, a->algorithm))) {
			mkerr_set(&h->err, "key %s in the %s keyring is %s/%s, but "
				  "the domain asks for %s/%s: fix the domain's "
				  "<mktme:encryption> or the key", desc,
				  h->cfg.keyring, type, alg, a->type, a->algorithm);
			return NULL;
		}
	} else if (!strcmp(a->type, "user")) {
		mkerr_set(&h->err, "user key %s is not in the %s keyring: add it "
			  "first (mktmectl key add --type user --algorithm %s "
			  "--key-file FILE --keyring %%:%s %s)", desc,
			  h->cfg.keyring, a->algorithm, h->cfg.keyring, desc);
		return NULL;
	} else {
		if (mktme_payload(payload, sizeof(payload), a->type, a->algorithm,
				  NULL, NULL, &why)) {
			mkerr_set(&h->err, "bad key request: %s", why);
			return NULL;
		}
		/* The intent first (serial 0): see reconcile() */
		nk.created = true;
		if (state_add_key(s, &nk)) {
			mkerr_set(&h->err, "out of memory");
			return NULL;
		}
		if (state_save(h->cfg.state_dir, s, h->cfg.qemu_group, &h->err))
			return NULL;
		crash_point(h, "intent-saved");
		serial = keys_create(ring, h->cfg.key_type, desc, payload,
				     h->cfg.qemu_group, &h->err);
		if (serial < 0) {
			struct mkerr ignored;
			int err = errno;

			state_remove_key(s, desc);
			if (err == ENOKEY)
				no_keyid_error(h, s, desc);
			state_save(h->cfg.state_dir, s, h->cfg.qemu_group, &ignored);
			return NULL;
		}
		crash_point(h, "key-created");
		k = state_find_key(s, desc);
		k->serial = serial;
		*created_now = true;
		return k;
	}
	nk.serial = serial;
	if (state_add_key(s, &nk)) {
		if (*created_now)
			keys_revoke(ring, serial, &h->err);
		mkerr_set(&h->err, "out of memory");
		return NULL;
	}
	return &s->keys[s->nkeys - 1];
}

static int domain_refusal(struct hook *h)
{
	return domain_xml_check(&h->dom, h->cfg.wrapper, &h->err);
}

/*
 * The directory where the QEMU wrapper (QEMU's group) puts the monitor
 * sockets of domains with memory hotplug (qmp_proxy.h)
 */
static int qmp_dir(struct hook *h)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/qmp", h->cfg.state_dir);
	if (mkdir(path, 0770) && errno != EEXIST)
		return mkerr_set(&h->err, "can't create %s: %s", path, strerror(errno));
	if (chown(path, 0, h->cfg.qemu_group) || chmod(path, 0770))
		return mkerr_set(&h->err, "can't give %s to QEMU's group: %s", path,
				 strerror(errno));
	return 0;
}

/*
 * Take the state's lock and load the state into S: the lock's descriptor,
 * or -1 with nothing held.  unlock_state() undoes it.
 */
static int lock_state(struct hook *h, struct state *s)
{
	int lock = state_lock(h->cfg.state_dir, h->cfg.qemu_group, &h->err);

	if (lock < 0)
		return -1;
	if (state_load(h->cfg.state_dir, s, &h->err)) {
		state_unlock(lock);
		return -1;
	}
	return lock;
}

/* Free S and release the lock lock_state() took */
static void unlock_state(struct state *s, int lock)
{
	state_free(s);
	state_unlock(lock);
}

/* D is in PHASE, under the libvirtd running this hook */
static void set_entry_phase(const struct hook *h, struct state_domain *d,
			    const char *phase)
{
	snprintf(d->phase, sizeof(d->phase), "%s", phase);
	snprintf(d->daemon, sizeof(d->daemon), "%s", h->daemon);
}

/* Add H's domain to S, using the key DESC, in PHASE */
static int add_entry(struct hook *h, struct state *s, const char *desc,
		     const char *phase)
{
	struct state_domain nd;

	memset(&nd, 0, sizeof(nd));
	snprintf(nd.uuid, sizeof(nd.uuid), "%s", h->dom.uuid);
	snprintf(nd.name, sizeof(nd.name), "%s", h->dom.name);
	snprintf(nd.key, sizeof(nd.key), "%s", desc);
	set_entry_phase(h, &nd, phase);
	if (state_add_domain(s, &nd))
		return mkerr_set(&h->err, "out of memory");
	return 0;
}

/* prepare: the domain's key exists and the state says so, or the start fails */
static int act_prepare(struct hook *h)
{
	struct state s;
	struct state_domain *old;
	struct state_key *k, *ok;
	key_serial_t ring;
	char desc[128];
	bool created_now = false;
	int lock, ret = -1;

	if (domain_refusal(h))
		return -1;
	if (!h->dom.marked)
		return 0;
	key_description(&h->dom, desc, sizeof(desc));
	lock = lock_state(h, &s);
	if (lock < 0)
		return -1;
	ring = keys_ring(h->cfg.keyring, &h->err);
	if (ring < 0 || reconcile(h, &s, ring, h->dom.uuid, false))
		goto out;
	/* A previous start that never reached release (killed hook or daemon) */
	old = state_find_domain(&s, h->dom.uuid);
	ok = old ? state_find_key(&s, old->key) : NULL;
	if (old && (strcmp(old->key, desc) ||
		    keys_is(ok->serial, h->cfg.key_type, old->key) != 1)) {
		if (release_domain(h, &s, h->dom.uuid, ring))
			goto out;
		old = NULL;
	}
	k = get_key(h, &s, ring, desc, &created_now);
	if (!k)
		goto out;
	if (!old) {
		if (add_entry(h, &s, desc, "prepared"))
			goto undo;
	} else {
		set_entry_phase(h, old, "prepared");
	}
	if (state_save(h->cfg.state_dir, &s, h->cfg.qemu_group, &h->err) ||
	    qmp_dir(h))
		goto undo;
	crash_point(h, "saved");
	ret = 0;
	goto out;
undo:
	if (created_now) {
		struct mkerr ignored;

		/* Revoked first; the entry it leaves is dropped by reconcile() */
		keys_revoke(ring, k->serial, &ignored);
	}
out:
	unlock_state(&s, lock);
	return ret;
}

/* start: QEMU is about to run; its key must still be there */
static int act_start(struct hook *h)
{
	struct state_domain *d;
	struct state_key *k;
	struct state s;
	int ret = -1;

	if (!h->dom.marked)
		return 0;
	if (state_load(h->cfg.state_dir, &s, &h->err))
		return -1;
	d = state_find_domain(&s, h->dom.uuid);
	k = d ? state_find_key(&s, d->key) : NULL;
	if (!k)
		mkerr_set(&h->err, "the hook's prepare phase left no key for it "
			  "(was the hook installed after libvirtd started? send "
			  "libvirtd SIGHUP)");
	else if (keys_is(k->serial, h->cfg.key_type, k->description) != 1)
		mkerr_set(&h->err, "its key %s (serial %d) was revoked after the "
			  "hook prepared it: start the domain again",
			  k->description, k->serial);
	else
		ret = 0;
	state_free(&s);
	return ret;
}

static int set_phase(struct hook *h, const char *phase)
{
	struct state_domain *d;
	struct state s;
	int lock, ret = -1;

	lock = lock_state(h, &s);
	if (lock < 0)
		return -1;
	d = state_find_domain(&s, h->dom.uuid);
	if (!d || !strcmp(d->phase, phase)) {
		ret = 0;
		goto out;
	}
	snprintf(d->phase, sizeof(d->phase), "%s", phase);
	crash_point(h, "before-save");
	ret = state_save(h->cfg.state_dir, &s, h->cfg.qemu_group, &h->err);
out:
	unlock_state(&s, lock);
	return ret;
}

static int act_started(struct hook *h)
{
	return h->dom.marked ? set_phase(h, "started") : 0;
}

/*
 * release: the domain is gone; its key goes with its last user.  Also
 * what a hook killed in this domain's prepare left (reconcile()).
 */
static int act_release(struct hook *h)
{
	key_serial_t ring;
	struct state s;
	char *before = NULL;
	int lock, ret = -1;

	/* Unmarked since prepare (virsh edit while running)?  Look anyway */
	lock = lock_state(h, &s);
	if (lock < 0)
		return -1;
	if (!s.nkeys && !s.ndomains) {
		ret = 0;
		goto out;
	}
	before = state_format(&s);
	ring = keys_ring(h->cfg.keyring, &h->err);
	if (ring < 0 || reconcile(h, &s, ring, h->dom.uuid, false) ||
	    release_domain(h, &s, h->dom.uuid, ring))
		goto out;
	ret = save_if_changed(h, &s, before);
out:
	free(before);
	unlock_state(&s, lock);
	return ret;
}

/*
 * reconnect (libvirtd restarted, the domain still runs): the state gets
 * the domain back if it lost it (its key is found by name in the
 * keyring), and entries of started domains whose QEMU is gone (stopped
 * while libvirtd was down, without a release) are released.  A running
 * guest is never failed here: failing would make libvirtd kill it.
 */
static int act_reconnect(struct hook *h)
{
	struct state_domain *d;
	struct state_key *k;
	key_serial_t ring;
	struct state s;
	char desc[128];
	bool created_now;
	char *before = NULL;
	int lock, ret = -1;

	/* Not lock_state(): a state that does not load is reported, not failed */
	lock = state_lock(h->cfg.state_dir, h->cfg.qemu_group, &h->err);
	if (lock < 0)
		return -1;
	if (state_load(h->cfg.state_dir, &s, &h->err))
		goto unlock;
	before = state_format(&s);
	ring = keys_ring(h->cfg.keyring, &h->err);
	if (ring < 0 || reconcile(h, &s, ring, h->dom.uuid, true))
		goto out;
	d = state_find_domain(&s, h->dom.uuid);
	if (d) {
		set_entry_phase(h, d, "started");
	} else if (h->dom.marked) {
		key_description(&h->dom, desc, sizeof(desc));
		if (keys_find(ring, h->cfg.key_type, desc, &h->err) <= 0) {
			fprintf(stderr, "mktme-kvm: domain %s: reconnect: its key %s "
				"is gone from the %s keyring; the guest keeps its "
				"KeyID until it stops (mktmectl keys)\n",
				h->dom.name, desc, h->cfg.keyring);
		} else {
			k = get_key(h, &s, ring, desc, &created_now);
			if (k && add_entry(h, &s, desc, "started"))
				goto out;
		}
	}
	crash_point(h, "before-save");
	ret = save_if_changed(h, &s, before);
out:
	free(before);
	state_free(&s);
unlock:
	state_unlock(lock);
	if (ret)
		fprintf(stderr, "mktme-kvm: domain %s: reconnect: %s (the guest "
			"keeps running)\n", h->dom.name, h->err.msg);
	return 0;
}

/*
 * migrate (this host is the destination, before QEMU starts and any
 * memory is sent): the domain arrives with its memory in plaintext (the
 * migration stream) and gets a key of this host's in the prepare phase
 * that follows, as for any start, before QEMU runs; its memory is then
 * written through the new KeyID.  Refuse here, early, when that cannot
 * work: the XML (the wrapper, what encrypted domains cannot have), no
 * TME-MK, no KeyID free for a key that does not live here yet.  A refusal
 * cancels the migration; the guest runs on at the source.  libvirt lets
 * this phase rewrite the XML (qemu.d scripts are filters); the hook
 * prints nothing, which keeps it as it is.
 */
static int act_migrate(struct hook *h)
{
	struct mktme_platform p;
	key_serial_t ring;
	char desc[128];
	int r;

	if (domain_refusal(h))
		return -1;
	if (!h->dom.marked)
		return 0;
	if (access(h->cfg.wrapper, X_OK))
		return mkerr_set(&h->err, "the mktme-kvm QEMU wrapper %s is not "
				 "installed on this host: install mktme-kvm here "
				 "(make install-libvirt) before moving encrypted "
				 "domains to it", h->cfg.wrapper);
	if (strcmp(h->cfg.key_type, "mktme"))
		return 0;	/* the tests' stand-in keys have no capacity */
	r = mktme_platform_read(MKTME_SYSFS, &p);
	if (r == -ENOENT)
		return mkerr_set(&h->err, "this host has no TME-MK (no %s: the CPU "
				 "or firmware lacks it, or the kernel lacks "
				 "CONFIG_X86_MKTME): move the domain to a TME-MK "
				 "host, or disable its encryption (mktmectl domain "
				 "disable DOMAIN) where it was saved or runs",
				 MKTME_SYSFS);
	if (r)
		return mkerr_set(&h->err, "can't read %s: %s", MKTME_SYSFS,
				 strerror(-r));
	if (p.keyids_in_use < p.keyids_total)
		return 0;
	/* Full: only a shared key that already lives here will do */
	key_description(&h->dom, desc, sizeof(desc));
	ring = keys_ring(h->cfg.keyring, &h->err);
	if (ring < 0)
		return -1;
	if (keys_find(ring, h->cfg.key_type, desc, &h->err) > 0)
		return 0;
	return mkerr_set(&h->err, "every KeyID of this host is in use (%u of %u; "
			 "mktmectl keys shows who holds them): free one (stop an "
			 "encrypted domain here), share a tenant's key (key='NAME'), "
			 "or choose another host", p.keyids_in_use, p.keyids_total);
}

static int act_nothing(struct hook *h)
{
	(void)h;
	return 0;
}

/*
 * restore (virsh restore, or virsh start of a domain with a managed save
 * image): the restored guest gets a key of its own in the prepare phase
 * that follows, before QEMU reads the image, exactly as a start does, and
 * prepare refuses what cannot be encrypted.  This phase itself never
 * fails: libvirt 11.3, when the restore hook fails on a managed save
 * start, deletes the managed save image (the guest's state is lost) and
 * reports the domain started while it stays shut off; a failed prepare
 * keeps the image and fails the start with the hook's message.  The XML
 * is kept (nothing printed): restore is an operation with nothing to do.
 *
 * libvirt's qemu hook operations (docs/hooks.rst), alphabetical.
 */
static const struct operation operations[] = {
	{ act_nothing, "attach" },
	{ act_migrate, "migrate" },
	{ act_prepare, "prepare" },
	{ act_reconnect, "reconnect" },
	{ act_release, "release" },
	{ act_nothing, "restore" },
	{ act_start, "start" },
	{ act_started, "started" },
	{ act_nothing, "stopped" },
	{ NULL, NULL },
};

static char *read_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap), *nb;
	ssize_t r;

	while (buf) {
		if (n + 1 >= cap) {
			if (cap >= XML_MAX) {
				free(buf);
				return NULL;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(STDIN_FILENO, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += r;
	}
	if (buf)
		buf[n] = 0;
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	const struct operation *op;
	struct hook h;
	size_t len = 0;
	char *xml;
	int ret;

	memset(&h, 0, sizeof(h));
	if (argc < 3) {
		fprintf(stderr, "usage: %s DOMAIN OPERATION SUB-OPERATION EXTRA "
			"< DOMAIN-XML (run by libvirtd as a qemu hook)\n", argv[0]);
		return 2;
	}
	h.op = argv[2];
	/* Always drain stdin: libvirtd writes the whole XML */
	xml = read_stdin(&len);
	for (op = operations; op->name && strcmp(op->name, h.op); op++)
		;
	if (!op->name || op->action == act_nothing) {
		free(xml);
		return 0;	/* an operation this hook has nothing to do in */
	}
	if (!xml) {
		fprintf(stderr, "mktme-kvm: domain %s: %s: can't read the domain "
			"XML on stdin\n", argv[1], h.op);
		return 1;
	}
	if (hook_config_load(&h.cfg, &h.err) ||
	    domain_xml_read(xml, len, h.cfg.schema, &h.dom, &h.err)) {
		free(xml);
		fprintf(stderr, "mktme-kvm: domain %s: %s: %s\n", argv[1], h.op,
			h.err.msg);
		return 1;
	}
	free(xml);
	daemon_id(h.daemon, sizeof(h.daemon));
	ret = op->action(&h);
	if (ret)
		fprintf(stderr, "mktme-kvm: domain %s: %s: %s\n", h.dom.name,
			h.op, h.err.msg);
	return ret ? 1 : 0;
}
