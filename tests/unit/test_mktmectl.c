// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of mktmectl: its library (sysfs, /proc/keys, payloads, JSON)
 * and the command line, against a fake sysfs directory and /proc/keys.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../tools/mktmectl/mktme.h"
#include "unit_helpers.h"

#define K128 "00112233445566778899aabbccddeeff"
#define K256 K128 K128

static const char *line_cpu =
	"1a2b3c4d I--Q---     1 perm 3f010000     0     0 mktme     guest-1: keyid=5 type=cpu algorithm=aes-xts-256 users=3\n";
static const char *line_revoked =
	"0000002a IR-Q---     1 perm 3f010000     0     0 mktme     old key: keyid=7 type=user algorithm=aes-xts-128 users=2 revoked\n";
static const char *line_released =
	"0000002b IR-Q---     1 perm 3f010000     0     0 mktme     older key: keyid=released type=cpu algorithm=aes-xts-256\n";
static const char *line_user_type =
	"00000010 I--Q---     1 perm 3f010000     0     0 user      note: 5\n";

Test(proc_keys, mktme_line)
{
	struct mktme_key_info k;

	cr_assert_eq(mktme_parse_proc_keys_line(line_cpu, &k), 1);
	cr_expect_eq(k.serial, 0x1a2b3c4d);
	cr_expect_str_eq(k.description, "guest-1");
	cr_expect_eq(k.keyid, 5);
	cr_expect_str_eq(k.type, "cpu");
	cr_expect_str_eq(k.algorithm, "aes-xts-256");
	cr_expect_eq(k.users, 3);
	cr_expect(!k.revoked);
}

Test(proc_keys, revoked_key_keeps_its_keyid_while_held)
{
	struct mktme_key_info k;

	cr_assert_eq(mktme_parse_proc_keys_line(line_revoked, &k), 1);
	cr_expect(k.revoked);
	cr_expect(!k.released);
	cr_expect_str_eq(k.description, "old key");
	cr_expect_eq(k.keyid, 7);
	cr_expect_eq(k.users, 2);
}

Test(proc_keys, released_key_has_no_keyid)
{
	struct mktme_key_info k;

	cr_assert_eq(mktme_parse_proc_keys_line(line_released, &k), 1);
	cr_expect(k.revoked);
	cr_expect(k.released);
	cr_expect_str_eq(k.description, "older key");
	cr_expect_eq(k.keyid, -1);
	cr_expect_eq(k.users, -1);
	cr_expect_str_eq(k.type, "cpu");
	cr_expect_str_eq(k.algorithm, "aes-xts-256");
}

Test(proc_keys, other_types_and_garbage)
{
	struct mktme_key_info k;

	cr_expect_eq(mktme_parse_proc_keys_line(line_user_type, &k), 0);
	cr_expect_eq(mktme_parse_proc_keys_line("garbage\n", &k), -EINVAL);
	cr_expect_eq(mktme_parse_proc_keys_line(
		"00000011 I--Q---     1 perm 3f010000     0     0 mktme     x: keyid=z\n",
		&k), -EINVAL);
}

static char dir[] = "/tmp/mktmectl-test-XXXXXX";

static void put(const char *name, const char *content)
{
	put_file(dir, name, content);
}

static void fake_kernel(void)
{
	char keys[1024];

	cr_assert_not_null(mkdtemp(dir));
	put("keyid_bits", "6\n");
	put("keyids_total", "63\n");
	put("keyids_in_use", "2\n");
	put("algorithms", "aes-xts-128 aes-xts-256\n");
	put("mounts", "proc /proc proc rw 0 0\n");
	snprintf(keys, sizeof(keys), "%s%s%s%s", line_user_type, line_cpu,
		 line_revoked, line_released);
	put("keys", keys);
}

static void remove_fake_kernel(void)
{
	remove_tree(dir);
	strcpy(dir, "/tmp/mktmectl-test-XXXXXX");
}

Test(platform, read, .init = fake_kernel, .fini = remove_fake_kernel)
{
	struct mktme_platform p;
	json_object *o;

	cr_assert_eq(mktme_platform_read(dir, &p), 0);
	cr_expect_eq(p.keyid_bits, 6);
	cr_expect_eq(p.keyids_total, 63);
	cr_expect_eq(p.keyids_in_use, 2);
	cr_expect_str_eq(p.algorithms, "aes-xts-128 aes-xts-256");
	o = mktme_platform_json(&p);
	cr_expect_eq(json_object_get_int(json_member(o, "keyids_free")), 61);
	cr_expect_eq(json_object_array_length(json_member(o, "algorithms")), 2);
	json_object_put(o);
}

Test(platform, missing_and_garbage, .init = fake_kernel, .fini = remove_fake_kernel)
{
	struct mktme_platform p;

	cr_expect_eq(mktme_platform_read("/nonexistent/mktme", &p), -ENOENT);
	put("keyids_total", "lots\n");
	cr_expect_eq(mktme_platform_read(dir, &p), -EINVAL);
}

Test(keys, read_all, .init = fake_kernel, .fini = remove_fake_kernel)
{
	struct mktme_key_info *keys;
	char path[256];
	json_object *o;

	snprintf(path, sizeof(path), "%s/keys", dir);
	cr_assert_eq(mktme_keys_read(path, &keys), 3);
	cr_expect_eq(keys[0].keyid, 5);
	cr_expect_eq(keys[1].keyid, 7);
	o = mktme_key_json(&keys[1]);
	cr_expect_str_eq(json_object_get_string(json_member(o, "state")), "revoked");
	json_object_put(o);
	o = mktme_key_json(&keys[2]);
	cr_expect_null(json_member(o, "users"), "a released key's users are null");
	cr_expect_null(json_member(o, "keyid"), "a released key's KeyID is null");
	cr_expect_str_eq(json_object_get_string(json_member(o, "state")), "released");
	json_object_put(o);
	free(keys);
}

Test(payload, valid_forms)
{
	char buf[MKTME_PAYLOAD_MAX];
	const char *why = NULL;

	cr_assert_eq(mktme_payload(buf, sizeof(buf), "cpu", "aes-xts-256",
				   NULL, NULL, &why), 0);
	cr_expect_str_eq(buf, "type=cpu algorithm=aes-xts-256");
	cr_assert_eq(mktme_payload(buf, sizeof(buf), "no-encrypt",
				   "aes-xts-128", NULL, NULL, &why), 0);
	cr_assert_eq(mktme_payload(buf, sizeof(buf), "user", "aes-xts-128",
				   K128, K128, &why), 0);
	cr_expect_str_eq(buf, "type=user algorithm=aes-xts-128 key=" K128
			 " tweak=" K128);
	cr_assert_eq(mktme_payload(buf, sizeof(buf), "user", "aes-xts-256",
				   K256, K256, &why), 0);
}

Test(payload, errors_name_the_problem)
{
	char buf[MKTME_PAYLOAD_MAX];
	const char *why = NULL;

	cr_expect_eq(mktme_payload(buf, sizeof(buf), "gpu", "aes-xts-128",
				   NULL, NULL, &why), -EINVAL);
	cr_expect(strstr(why, "--type"));
	cr_expect_eq(mktme_payload(buf, sizeof(buf), "cpu", NULL, NULL, NULL,
				   &why), -EINVAL);
	cr_expect(strstr(why, "--algorithm"));
	cr_expect_eq(mktme_payload(buf, sizeof(buf), "cpu", "aes-xts-128",
				   K128, K128, &why), -EINVAL);
	cr_expect_eq(mktme_payload(buf, sizeof(buf), "user", "aes-xts-256",
				   K128, K128, &why), -EINVAL);
	cr_expect(strstr(why, "64 hex digits"));
	cr_expect_eq(mktme_payload(buf, sizeof(buf), "user", "aes-xts-128",
				   "0011223344556677889900aabbccddeg", K128,
				   &why), -EINVAL);
	cr_expect_eq(mktme_payload(buf, 20, "cpu", "aes-xts-128", NULL, NULL,
				   &why), -EINVAL);
}

/* The command line, run against the fake kernel */
static int run(const char *args, char *out, size_t len)
{
	char env[256];

	snprintf(env, sizeof(env), "MKTMECTL_SYSFS=%s MKTMECTL_PROC_KEYS=%s/keys "
		 "MKTMECTL_MOUNTS=%s/mounts", dir, dir, dir);
	return run_mktmectl(env, args, out, len);
}

Test(cli, status_text_and_json, .init = fake_kernel, .fini = remove_fake_kernel)
{
	char out[4096];
	json_object *o;

	cr_assert_eq(run("status", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "6 KeyID bits, 63 KeyIDs: 2 in use, 61 free"), "%s", out);
	cr_assert_eq(run("--json status", out, sizeof(out)), 0);
	o = json_tokener_parse(out);
	cr_assert_not_null(o, "%s", out);
	cr_expect_eq(json_object_get_int(json_member(o, "keyids_in_use")), 2);
	json_object_put(o);
}

/* A mounts file naming DIR/cg as a misc cgroup of VERSION, with FILES */
static void fake_misc(int version, const char *capacity, const char *current)
{
	char line[512];

	snprintf(line, sizeof(line), "%s", dir);
	strcat(line, "/cg");
	cr_assert(mkdir(line, 0755) == 0 || errno == EEXIST);
	put("cg/misc.capacity", capacity);
	put("cg/misc.current", current);
	if (version == 2)
		snprintf(line, sizeof(line), "proc /proc proc rw 0 0\n"
			 "cgroup2 %s/cg cgroup2 rw,nosuid 0 0\n", dir);
	else
		snprintf(line, sizeof(line), "cgroup %s/cpu cgroup rw,cpu 0 0\n"
			 "misc %s/cg cgroup rw,nosuid,misc 0 0\n", dir, dir);
	put("mounts", line);
}

Test(misc_cgroup, v2_v1_and_none, .init = fake_kernel, .fini = remove_fake_kernel)
{
	struct mktme_misc_cgroup m;
	char mounts[300];

	snprintf(mounts, sizeof(mounts), "%s/mounts", dir);
	cr_assert_eq(mktme_misc_cgroup_read(mounts, &m), 0);
	cr_expect_eq(m.version, 0, "no misc controller mounted");
	cr_expect_null(mktme_misc_cgroup_json(&m));
	fake_misc(2, "sev 0\nsev_es 0\nmktme 63\n", "sev 0\nmktme 5\n");
	cr_assert_eq(mktme_misc_cgroup_read(mounts, &m), 0);
	cr_expect_eq(m.version, 2);
	cr_expect_eq(m.capacity, 63);
	cr_expect_eq(m.current, 5);
	fake_misc(1, "mktme 3\n", "mktme 3\n");
	cr_assert_eq(mktme_misc_cgroup_read(mounts, &m), 0);
	cr_expect_eq(m.version, 1);
	cr_expect_eq(m.capacity, 3);
	put("cg/misc.capacity", "sev 0\n");
	cr_assert_eq(mktme_misc_cgroup_read(mounts, &m), 0);
	cr_expect_eq(m.capacity, -1, "a kernel without the mktme resource");
	cr_expect_lt(mktme_misc_cgroup_read("/nonexistent/mounts", &m), 0);
}

Test(cli, status_shows_the_misc_cgroup, .init = fake_kernel, .fini = remove_fake_kernel)
{
	char out[4096];
	json_object *o, *cg;

	cr_assert_eq(run("status", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "misc cgroup: not mounted"), "%s", out);
	cr_assert_eq(run("--json status", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "\"misc_cgroup\": null"), "%s", out);
	fake_misc(2, "mktme 63\n", "mktme 2\n");
	cr_assert_eq(run("status", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "misc cgroup: v2 at "), "%s", out);
	cr_expect(strstr(out, "mktme capacity 63, current 2"), "%s", out);
	cr_assert_eq(run("--json status", out, sizeof(out)), 0, "%s", out);
	o = json_tokener_parse(out);
	cr_assert_not_null(o, "%s", out);
	cr_expect_eq(json_object_get_int(json_member(o, "keyids_free")), 61);
	cg = json_member(o, "misc_cgroup");
	cr_expect_eq(json_object_get_int(json_member(cg, "capacity")), 63);
	cr_expect_eq(json_object_get_int(json_member(cg, "version")), 2);
	json_object_put(o);
}

Test(cli, keys_json, .init = fake_kernel, .fini = remove_fake_kernel)
{
	char out[4096];
	json_object *o;

	cr_assert_eq(run("--json keys", out, sizeof(out)), 0, "%s", out);
	o = json_tokener_parse(out);
	cr_assert_not_null(o, "%s", out);
	cr_assert_eq(json_object_array_length(o), 3);
	cr_expect_str_eq(json_object_get_string(
		json_member(json_object_array_get_idx(o, 0), "description")), "guest-1");
	json_object_put(o);
	cr_assert_eq(run("keys", out, sizeof(out)), 0);
	cr_expect(strstr(out, "revoked"), "%s", out);
	cr_expect(strstr(out, "released"), "%s", out);
}

Test(cli, usage_errors_exit_2, .init = fake_kernel, .fini = remove_fake_kernel)
{
	char out[4096];

	cr_expect_eq(run("", out, sizeof(out)), 2);
	cr_expect_eq(run("frobnicate", out, sizeof(out)), 2);
	cr_expect(strstr(out, "unknown command 'frobnicate'"), "%s", out);
	cr_expect_eq(run("k", out, sizeof(out)), 2);
	cr_expect(strstr(out, "ambiguous"), "%s", out);
	cr_expect_eq(run("stat", out, sizeof(out)), 0, "a unique prefix works");
	cr_expect_eq(run("key add --type gpu --algorithm aes-xts-128 x", out,
			 sizeof(out)), 2);
	cr_expect(strstr(out, "--type must be"), "%s", out);
	cr_expect_eq(run("key add --type user --algorithm aes-xts-128 x", out,
			 sizeof(out)), 2);
	cr_expect(strstr(out, "--key-file"), "%s", out);
	cr_expect_eq(run("key revoke twelve", out, sizeof(out)), 2);
	cr_expect_eq(run("--frob status", out, sizeof(out)), 2);
}

Test(cli, no_tme_mk_is_explained)
{
	char out[4096];

	strcpy(dir, "/nonexistent");
	cr_expect_eq(run("status", out, sizeof(out)), 1);
	cr_expect(strstr(out, "no TME-MK support"), "%s", out);
	strcpy(dir, "/tmp/mktmectl-test-XXXXXX");
}
