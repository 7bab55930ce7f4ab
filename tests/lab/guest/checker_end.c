// SPDX-License-Identifier: GPL-2.0
/*
 * The alias-coherency checker's count at the end of a lab run.  Run last
 * (lab.run=...,checker_end) when an earlier program switched the checker
 * on and left it on (keyed.checker=all: keyed.c does, and checks its own
 * part): what every program of the run did since counts, and the
 * checker must still be on, so that it was on throughout.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

int main(void)
{
	char cmdline[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");
	uint64_t violations, conflicts, enabled;

	tap_begin();
	if (f) {
		if (!fgets(cmdline, sizeof(cmdline), f))
			cmdline[0] = 0;
		fclose(f);
	}
	if (!strstr(cmdline, "keyed.checker=all")) {
		tap_skip("no keyed.checker=all", "checker: the whole run");
		return tap_end();
	}
	enabled = lab_checker_count("enabled");
	violations = lab_checker_count("read-violations");
	conflicts = lab_checker_count("write-conflicts");
	tap_ok(enabled == 1, "checker: still on at the end of the run");
	if (!tap_ok(violations == 0, "checker: no read violation over the "
		    "whole run, every program (%llu)",
		    (unsigned long long)violations))
		tap_diag("last violation: PA %#llx read through KeyID %llu, "
			 "written through KeyID %llu",
			 (unsigned long long)lab_checker_count("last-violation-address"),
			 (unsigned long long)lab_checker_count("last-violation-read-keyid"),
			 (unsigned long long)lab_checker_count("last-violation-write-keyid"));
	tap_ok(conflicts == 0, "checker: no write conflict over the whole "
	       "run (%llu)", (unsigned long long)conflicts);
	tap_diag("checker: %llu flushes over the whole run",
		 (unsigned long long)lab_checker_count("flushes"));
	return tap_end();
}
