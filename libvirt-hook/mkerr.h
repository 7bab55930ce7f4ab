/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One error message per failed call: every function of the hook, the
 * QEMU wrapper and mktmectl's domain verbs that can fail returns -1 (or
 * NULL) and leaves in a struct mkerr one sentence naming the cause and,
 * where there is one, the fix.
 */
#ifndef MKERR_H
#define MKERR_H

#include <stddef.h>

struct mkerr {
	char msg[1024];
};

/* Set e's message (printf-style; truncated to fit) and return -1 */
int mkerr_set(struct mkerr *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prepend "what: " to e's message (context from the caller); -1 */
int mkerr_prefix(struct mkerr *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append to e's message (printf-style; cut to fit); -1 */
int mkerr_append(struct mkerr *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
