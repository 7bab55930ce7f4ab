// SPDX-License-Identifier: GPL-2.0
/*
 * Criterion tests of mktmectl's holders: who holds which KeyID, from a
 * fake /proc (smaps, comm) and a fake KVM debugfs directory.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/mktmectl/holders.h"
#include "unit_helpers.h"

static char dir[] = "/tmp/mktmectl-holders-XXXXXX";
static char proc[300], kvm[300];

static void put(const char *rel, const char *content)
{
	put_file(dir, rel, content);
}

/* qemu (pid 100): two keyed VMAs with KeyID 5, one VM bound to 5; a
 * process (200) with KeyID 7 memory and no VM; one (300) with none */
static void fake_system(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(proc, sizeof(proc), "%s/proc", dir);
	snprintf(kvm, sizeof(kvm), "%s/kvm", dir);
	put("proc/100/comm", "qemu-system-x86\n");
	put("proc/100/smaps",
	    "7f0000000000-7f0000400000 rw-p 00000000 00:00 0\n"
	    "Rss:                4096 kB\nKeyID:                 5\n"
	    "7f0000400000-7f0000401000 rw-p 00000000 00:00 0\n"
	    "Rss:                   4 kB\nKeyID:                 0\n"
	    "7f0000500000-7f0000600000 rw-p 00000000 00:00 0\n"
	    "Rss:                1024 kB\nKeyID:                 5\n");
	put("proc/200/comm", "keyed\n");
	put("proc/200/smaps",
	    "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n"
	    "Rss:                   4 kB\nKeyID:                 7\n");
	put("proc/300/comm", "plain\n");
	put("proc/300/smaps",
	    "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n"
	    "Rss:                   4 kB\nKeyID:                 0\n");
	put("proc/self", "not a process\n");
	put("kvm/100-12/mktme_keyid", "5\n");
	put("kvm/300-9/mktme_keyid", "0\n");
	put("kvm/stray", "");
}

static void remove_system(void)
{
	remove_tree(dir);
}

TestSuite(holders, .init = fake_system, .fini = remove_system);

Test(holders, per_keyid_and_process)
{
	struct mktme_holder *h;
	bool vms_seen;
	int n = mktme_holders_read(proc, kvm, &h, &vms_seen);

	cr_assert_eq(n, 2);
	cr_expect(vms_seen);
	cr_expect_eq(h[0].keyid, 5);
	cr_expect_eq(h[0].pid, 100);
	cr_expect_str_eq(h[0].comm, "qemu-system-x86");
	cr_expect_eq(h[0].keyed_kb, 5120, "both KeyID-5 mappings counted");
	cr_expect_eq(h[0].vms, 1);
	cr_expect_eq(h[1].keyid, 7);
	cr_expect_eq(h[1].pid, 200);
	cr_expect_eq(h[1].keyed_kb, 4);
	cr_expect_eq(h[1].vms, 0);
	free(h);
}

Test(holders, without_kvm_debugfs)
{
	char missing[400];
	struct mktme_holder *h;
	bool vms_seen = true;

	snprintf(missing, sizeof(missing), "%s/none", dir);
	cr_assert_eq(mktme_holders_read(proc, missing, &h, &vms_seen), 2);
	cr_expect(!vms_seen);
	cr_expect_eq(h[0].vms, 0);
	free(h);
}

Test(holders, no_proc)
{
	char missing[400];
	struct mktme_holder *h;
	bool vms_seen;

	snprintf(missing, sizeof(missing), "%s/none", dir);
	cr_expect_eq(mktme_holders_read(missing, kvm, &h, &vms_seen), -ENOENT);
}

Test(holders, json)
{
	struct mktme_holder h = { .keyid = 3, .pid = 42, .comm = "qemu",
				  .keyed_kb = 8, .vms = 1 };
	json_object *o = mktme_holder_json(&h);

	cr_expect_eq(json_object_get_int(json_member(o, "keyid")), 3);
	cr_expect_str_eq(json_object_get_string(json_member(o, "comm")), "qemu");
	cr_expect_eq(json_object_get_int(json_member(o, "vms")), 1);
	json_object_put(o);
}

/* The command line, run against the fake system */
static int run(const char *args, char *out, size_t len)
{
	char env[700];

	snprintf(env, sizeof(env), "MKTMECTL_PROC=%s MKTMECTL_KVM_DEBUGFS=%s",
		 proc, kvm);
	return run_mktmectl(env, args, out, len);
}

Test(holders, cli_text_and_json)
{
	char out[4096];
	json_object *o;

	cr_assert_eq(run("holders", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "KEYID"), "%s", out);
	cr_expect(strstr(out, "qemu-system-x86"), "%s", out);
	cr_assert_eq(run("--json holders", out, sizeof(out)), 0, "%s", out);
	o = json_tokener_parse(out);
	cr_assert_not_null(o, "%s", out);
	cr_assert_eq(json_object_array_length(o), 2);
	cr_expect_eq(json_object_get_int(json_member(json_object_array_get_idx(o, 0),
						     "keyed_kb")), 5120);
	json_object_put(o);
	cr_expect_eq(run("holders extra", out, sizeof(out)), 2, "%s", out);
}
