/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who holds which KeyID: processes with keyed memory (the "KeyID:" lines
 * of /proc/PID/smaps) and KVM VMs bound to a key (the mktme_keyid
 * statistic in KVM's debugfs directory, one PID-FD directory per VM).
 */
#ifndef MKTMECTL_HOLDERS_H
#define MKTMECTL_HOLDERS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#define MKTME_PROC		"/proc"
#define MKTME_KVM_DEBUGFS	"/sys/kernel/debug/kvm"

struct mktme_holder {
	int keyid;
	pid_t pid;
	char comm[32];
	long keyed_kb;		/* resident keyed memory (smaps Rss) */
	int vms;		/* KVM VMs of the process bound to the KeyID */
};

/*
 * Every (KeyID, process) pair, sorted by KeyID then PID, from PROC and KVM
 * (KVM's debugfs; missing if not mounted, then VMs are not counted).
 * Returns how many, or -errno; *vms_seen says whether KVM could be read.
 */
int mktme_holders_read(const char *proc, const char *kvm,
		       struct mktme_holder **out, bool *vms_seen);
json_object *mktme_holder_json(const struct mktme_holder *h);

#endif
