/* SPDX-License-Identifier: GPL-2.0 */
/* mktmectl's command line, shared by its command groups */
#ifndef MKTMECTL_CLI_H
#define MKTMECTL_CLI_H

#include <stdbool.h>
#include <json-c/json.h>

struct command {
	int (*action)(int argc, char **argv);
	const char *name;
	const char *format;
};

extern bool json;

void die(int status, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
void usage(void) __attribute__((noreturn));
void print_json(json_object *o);
int do_command(const struct command *table, int argc, char **argv);
/* ARGV[0] is a command group, ARGV[1] one of TABLE's commands */
int do_subcommand(const struct command *table, int argc, char **argv);

/* mktmectl domain enable|disable|show (domain.c, with libvirt) */
extern const struct command domain_commands[];
int act_domain(int argc, char **argv);

#endif
