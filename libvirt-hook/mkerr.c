// SPDX-License-Identifier: GPL-2.0
/* struct mkerr: see mkerr.h */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mkerr.h"

int mkerr_set(struct mkerr *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int mkerr_prefix(struct mkerr *e, const char *fmt, ...)
{
	char old[sizeof(e->msg)];
	size_t n;
	va_list ap;

	memcpy(old, e->msg, sizeof(old));
	old[sizeof(old) - 1] = 0;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	if (n + 2 < sizeof(e->msg)) {
		memcpy(e->msg + n, ": ", 2);
		n += 2;
		/* the old message, cut to what is left */
		size_t room = sizeof(e->msg) - n - 1, len = strlen(old);

		if (len > room)
			len = room;
		memcpy(e->msg + n, old, len);
		e->msg[n + len] = 0;
	}
	return -1;
}

int mkerr_append(struct mkerr *e, const char *fmt, ...)
{
	size_t n = strnlen(e->msg, sizeof(e->msg) - 1);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	va_end(ap);
	return -1;
}
