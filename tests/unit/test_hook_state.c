// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of libvirt-hook/hook_state.c: the hook's JSON state, its
 * validation (a clear error, nothing half-read), atomic saving, locking.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../libvirt-hook/hook_state.h"
#include "unit_helpers.h"

static char dir[] = "/tmp/mktme-state-test-XXXXXX";

static void mkdir_tmp(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	remove_tree(dir);
}

static void sample(struct state *s)
{
	struct state_key k = { "mktme-kvm:u1", 11, "cpu", "aes-xts-256", true };
	struct state_key shared = { "tenant", 22, "cpu", "aes-xts-128", true };
	struct state_domain d1 = { "u1", "vm1", "mktme-kvm:u1", "started", "" };
	struct state_domain d2 = { "u2", "vm2", "tenant", "prepared", "41:7" };
	struct state_domain d3 = { "u3", "vm3", "tenant", "started", "41:7" };

	memset(s, 0, sizeof(*s));
	cr_assert_eq(state_add_key(s, &k), 0);
	cr_assert_eq(state_add_key(s, &shared), 0);
	cr_assert_eq(state_add_domain(s, &d1), 0);
	cr_assert_eq(state_add_domain(s, &d2), 0);
	cr_assert_eq(state_add_domain(s, &d3), 0);
}

Test(state, format_parse_round_trip)
{
	struct state s, t;
	struct mkerr e;
	char *text;

	sample(&s);
	text = state_format(&s);
	cr_assert_not_null(text);
	cr_assert_eq(state_parse(text, &t, &e), 0, "%s", e.msg);
	cr_expect_eq(t.nkeys, 2);
	cr_expect_eq(t.ndomains, 3);
	cr_expect_eq(state_find_key(&t, "tenant")->serial, 22);
	cr_expect(state_find_key(&t, "tenant")->created);
	cr_expect_str_eq(state_find_domain(&t, "U2")->name, "vm2", "UUIDs match in any case");
	cr_expect_eq(state_key_users(&t, "tenant"), 2);
	cr_expect_eq(state_key_users(&t, "mktme-kvm:u1"), 1);
	cr_expect_str_eq(state_find_domain(&t, "u2")->daemon, "41:7");
	cr_expect_str_eq(state_find_domain(&t, "u1")->daemon, "",
			 "no daemon: a state file of an earlier version");
	free(text);
	state_free(&s);
	state_free(&t);
}

Test(state, remove_entries)
{
	struct state s;

	sample(&s);
	state_remove_domain(&s, "u2");
	cr_expect_eq(s.ndomains, 2);
	cr_expect_eq(state_key_users(&s, "tenant"), 1);
	cr_expect_null(state_find_domain(&s, "u2"));
	cr_expect_not_null(state_find_domain(&s, "u3"));
	state_remove_key(&s, "mktme-kvm:u1");
	cr_expect_eq(s.nkeys, 1);
	cr_expect_str_eq(s.keys[0].description, "tenant");
	state_remove_key(&s, "absent");
	cr_expect_eq(s.nkeys, 1);
	state_free(&s);
}

Test(state, invalid_state_is_named)
{
	static const struct {
		const char *text, *word;
	} bad[] = {
		{ "", "not JSON" },
		{ "{\"version\": 1, \"keys\": [", "not JSON" },
		{ "[]", "not a JSON object" },
		{ "{\"version\": 2, \"keys\": [], \"domains\": []}", "version" },
		{ "{\"version\": 1, \"domains\": []}", "\"keys\"" },
		{ "{\"version\": 1, \"keys\": [{\"description\": \"k\", \"serial\": -4, "
		  "\"type\": \"cpu\", \"algorithm\": \"aes-xts-128\", \"created\": true}], "
		  "\"domains\": []}", "serial -4" },
		{ "{\"version\": 1, \"keys\": [{\"description\": \"k\", \"serial\": 4, "
		  "\"type\": \"cpu\", \"algorithm\": \"aes-xts-128\"}], \"domains\": []}",
		  "created" },
		{ "{\"version\": 1, \"keys\": [], \"domains\": [{\"uuid\": \"u\", "
		  "\"name\": \"n\", \"key\": \"k\", \"phase\": \"prepared\"}]}",
		  "not in \"keys\"" },
		{ "{\"version\": 1, \"keys\": [{\"description\": \"k\", \"serial\": 4, "
		  "\"type\": \"cpu\", \"algorithm\": \"aes-xts-128\", \"created\": true}], "
		  "\"domains\": [{\"uuid\": \"u\", \"name\": \"n\", \"key\": \"k\", "
		  "\"phase\": \"flying\"}]}", "unknown phase" },
		{ "{\"version\": 1, \"keys\": [{\"description\": \"k\", \"serial\": 4, "
		  "\"type\": \"cpu\", \"algorithm\": \"aes-xts-128\", \"created\": true}], "
		  "\"domains\": [{\"uuid\": \"u\", \"name\": \"n\", \"key\": \"k\", "
		  "\"phase\": \"started\", \"daemon\": 5}]}", "daemon" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct state s;
		struct mkerr e;

		cr_expect_eq(state_parse(bad[i].text, &s, &e), -1, "accepted %s", bad[i].text);
		cr_expect(strstr(e.msg, bad[i].word), "%zu: %s", i, e.msg);
		cr_expect_null(s.keys);
		cr_expect_null(s.domains);
	}
}

Test(state, missing_file_is_empty, .init = mkdir_tmp, .fini = rm_tmp)
{
	struct state s;
	struct mkerr e;

	cr_assert_eq(state_load(dir, &s, &e), 0, "%s", e.msg);
	cr_expect_eq(s.nkeys + s.ndomains, 0);
	state_free(&s);
}

Test(state, save_is_atomic_and_private, .init = mkdir_tmp, .fini = rm_tmp)
{
	char path[256];
	struct state s, t;
	struct stat st;
	struct dirent *de;
	struct mkerr e;
	DIR *dd;
	int n = 0;

	sample(&s);
	cr_assert_eq(state_save(dir, &s, 0, &e), 0, "%s", e.msg);
	snprintf(path, sizeof(path), "%s/" STATE_FILE, dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0640);
	/* A leftover temporary file of a killed hook does not stop the next save */
	snprintf(path, sizeof(path), "%s/" STATE_FILE ".tmp", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	state_remove_domain(&s, "u1");
	cr_assert_eq(state_save(dir, &s, 0, &e), 0, "%s", e.msg);
	dd = opendir(dir);
	while ((de = readdir(dd)))
		n += de->d_name[0] != '.';
	closedir(dd);
	cr_expect_eq(n, 1, "only state.json is left");
	cr_assert_eq(state_load(dir, &t, &e), 0, "%s", e.msg);
	cr_expect_eq(t.ndomains, 2);
	state_free(&s);
	state_free(&t);
}

Test(state, corrupt_file_names_itself_and_the_fix, .init = mkdir_tmp, .fini = rm_tmp)
{
	char path[256];
	struct state s;
	struct mkerr e;

	snprintf(path, sizeof(path), "%s/" STATE_FILE, dir);
	put_file(dir, STATE_FILE, "{\"version\": 1, \"keys\": 5}");
	cr_expect_eq(state_load(dir, &s, &e), -1);
	cr_expect(strstr(e.msg, path), "%s", e.msg);
	cr_expect(strstr(e.msg, "mktmectl keys"), "%s", e.msg);
}

Test(state, lock_excludes_a_second_writer, .init = mkdir_tmp, .fini = rm_tmp)
{
	char sub[300];
	struct mkerr e;
	int fd, fd2, status;
	pid_t pid;

	snprintf(sub, sizeof(sub), "%s/run", dir);
	fd = state_lock(sub, 0, &e);
	cr_assert_geq(fd, 0, "%s", e.msg);
	pid = fork();
	if (pid == 0) {
		char lock[320];
		int l;

		snprintf(lock, sizeof(lock), "%s/" STATE_LOCK, sub);
		l = open(lock, O_RDWR);
		_exit(flock(l, LOCK_EX | LOCK_NB) == 0 ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	cr_expect_eq(WEXITSTATUS(status), 0, "the lock was not held");
	state_unlock(fd);
	fd2 = state_lock(sub, 0, &e);
	cr_expect_geq(fd2, 0);
	state_unlock(fd2);
}

Test(state, pending_key_round_trip)
{
	struct state_key k = { "mktme-kvm:u9", 0, "cpu", "aes-xts-128", true };
	struct state s, t;
	struct mkerr e;
	char *text;

	memset(&s, 0, sizeof(s));
	cr_assert_eq(state_add_key(&s, &k), 0);
	text = state_format(&s);
	cr_assert_eq(state_parse(text, &t, &e), 0, "serial 0 is a pending key: %s", e.msg);
	cr_expect_eq(t.keys[0].serial, 0);
	free(text);
	state_free(&s);
	state_free(&t);
}

Test(state, holders_text_names_domains_by_key)
{
	struct state s;
	char buf[256];

	sample(&s);
	state_holders_text(&s, buf, sizeof(buf));
	cr_expect_str_eq(buf, "KeyIDs held by encrypted domains: vm1; vm2, vm3 "
			 "(shared key tenant)");
	/* Cut to fit, still a string */
	state_holders_text(&s, buf, 20);
	cr_expect_eq(strlen(buf), 19);
	state_free(&s);
	memset(&s, 0, sizeof(s));
	state_holders_text(&s, buf, sizeof(buf));
	cr_expect(strstr(buf, "no encrypted domain of this host holds one"), "%s", buf);
}
