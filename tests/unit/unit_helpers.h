/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What several unit tests need: files in a test's temporary directory,
 * mktmectl run as the operator runs it, JSON members that must be there.
 */
#ifndef UNIT_HELPERS_H
#define UNIT_HELPERS_H

#include <stddef.h>
#include <json-c/json.h>

/* DIR/REL with CONTENT; the directories of REL are made on the way */
void put_file(const char *dir, const char *rel, const char *content);

/* rm -rf DIR; a failure fails the test */
void remove_tree(const char *dir);

/*
 * mktmectl ($MKTMECTL, or build/tools/mktmectl) with ARGS, the variables
 * ENV ("NAME=VALUE ...") in its environment; its stdout and stderr in
 * OUT; its exit status (-1 when killed)
 */
int run_mktmectl(const char *env, const char *args, char *out, size_t len);

/* O's member NAME, which must be there (it may be null) */
json_object *json_member(json_object *o, const char *name);

#endif
