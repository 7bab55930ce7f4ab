// SPDX-License-Identifier: GPL-2.0
/* What several unit tests need (unit_helpers.h) */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit_helpers.h"

void put_file(const char *dir, const char *rel, const char *content)
{
	char path[512], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = 0;
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(content, f);
	fclose(f);
}

void remove_tree(const char *dir)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0, "%s", cmd);
}

int run_mktmectl(const char *env, const char *args, char *out, size_t len)
{
	const char *mktmectl = getenv("MKTMECTL");
	char cmd[1024];
	FILE *p;
	size_t n;
	int status;

	snprintf(cmd, sizeof(cmd), "%s %s %s 2>&1", env,
		 mktmectl ? mktmectl : "build/tools/mktmectl", args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

json_object *json_member(json_object *o, const char *name)
{
	json_object *v = NULL;

	cr_assert(json_object_object_get_ex(o, name, &v), "no \"%s\"", name);
	return v;
}
