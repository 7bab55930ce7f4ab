// SPDX-License-Identifier: GPL-2.0
/*
 * mktmectl - the operator's view of TME-MK: platform, keys and KeyIDs
 *
 * Exit status: 0 success, 1 system error, 2 usage, 3 unexpected kernel data.
 * Output goes to stdout (JSON with --json), diagnostics to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <keyutils.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "holders.h"
#include "mktme.h"

bool json;
static const char *sysfs_dir = MKTME_SYSFS;
static const char *proc_keys = MKTME_PROC_KEYS;
static const char *proc_dir = MKTME_PROC;
static const char *kvm_debugfs = MKTME_KVM_DEBUGFS;
static const char *mounts = MKTME_MOUNTS;
static const struct command *commands;

void die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("mktmectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					       JSON_C_TO_STRING_SPACED |
					       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void read_platform(struct mktme_platform *p)
{
	int r = mktme_platform_read(sysfs_dir, p);

	if (r == -ENOENT)
		die(1, "this kernel has no TME-MK support (%s is missing): "
		    "the CPU or firmware lacks TME-MK, or the kernel lacks "
		    "CONFIG_X86_MKTME", sysfs_dir);
	if (r == -EINVAL)
		die(3, "unexpected contents in %s", sysfs_dir);
	if (r)
		die(1, "can't read %s: %s", sysfs_dir, strerror(-r));
}

static int act_status(int argc, char **argv)
{
	struct mktme_misc_cgroup cg;
	struct mktme_platform p;
	int r;

	(void)argv;
	if (argc != 1)
		usage();
	read_platform(&p);
	r = mktme_misc_cgroup_read(mounts, &cg);
	if (r)
		die(1, "can't read %s: %s", mounts, strerror(-r));
	if (json) {
		json_object *o = mktme_platform_json(&p);

		json_object_object_add(o, "misc_cgroup", mktme_misc_cgroup_json(&cg));
		print_json(o);
		return 0;
	}
	printf("TME-MK: %u KeyID bits, %u KeyIDs: %u in use, %u free\n",
	       p.keyid_bits, p.keyids_total, p.keyids_in_use,
	       p.keyids_total - p.keyids_in_use);
	printf("algorithms: %s\n", p.algorithms);
	if (!cg.version)
		printf("misc cgroup: not mounted (mount cgroup2 and enable +misc "
		       "at its root for schedulers)\n");
	else if (cg.capacity < 0)
		printf("misc cgroup: v%d at %s has no mktme entry\n", cg.version,
		       cg.path);
	else
		printf("misc cgroup: v%d at %s: mktme capacity %ld, current %ld\n",
		       cg.version, cg.path, cg.capacity, cg.current);
	return 0;
}

static int act_keys(int argc, char **argv)
{
	struct mktme_key_info *keys;
	json_object *a;
	int n, i;

	(void)argv;
	if (argc != 1)
		usage();
	n = mktme_keys_read(proc_keys, &keys);
	if (n == -EINVAL)
		die(3, "unexpected line in %s", proc_keys);
	if (n < 0)
		die(1, "can't read %s: %s", proc_keys, strerror(-n));
	if (json) {
		a = json_object_new_array();
		for (i = 0; i < n; i++)
			json_object_array_add(a, mktme_key_json(&keys[i]));
		print_json(a);
	} else {
		printf("%-10s %-6s %-11s %-12s %-5s %-8s %s\n", "SERIAL",
		       "KEYID", "TYPE", "ALGORITHM", "USERS", "STATE",
		       "DESCRIPTION");
		for (i = 0; i < n; i++) {
			char keyid[16] = "-", users[24] = "-";

			if (keys[i].keyid >= 0)
				snprintf(keyid, sizeof(keyid), "%d", keys[i].keyid);
			if (keys[i].users >= 0)
				snprintf(users, sizeof(users), "%ld", keys[i].users);
			printf("%-10u %-6s %-11s %-12s %-5s %-8s %s\n",
			       keys[i].serial, keyid, keys[i].type,
			       keys[i].algorithm, users,
			       mktme_key_state(&keys[i]), keys[i].description);
		}
	}
	free(keys);
	return 0;
}

static int act_holders(int argc, char **argv)
{
	struct mktme_holder *h;
	bool vms_seen;
	json_object *a;
	int n, i;

	(void)argv;
	if (argc != 1)
		usage();
	n = mktme_holders_read(proc_dir, kvm_debugfs, &h, &vms_seen);
	if (n < 0)
		die(1, "can't read %s: %s", proc_dir, strerror(-n));
	if (!vms_seen)
		fprintf(stderr, "mktmectl: %s is not readable (mount debugfs): "
			"KVM VMs are not counted\n", kvm_debugfs);
	if (json) {
		a = json_object_new_array();
		for (i = 0; i < n; i++)
			json_object_array_add(a, mktme_holder_json(&h[i]));
		print_json(a);
	} else {
		printf("%-6s %-8s %-16s %-10s %s\n", "KEYID", "PID", "COMMAND",
		       "KEYED-KB", "VMS");
		for (i = 0; i < n; i++)
			printf("%-6d %-8d %-16s %-10ld %d\n", h[i].keyid,
			       h[i].pid, h[i].comm, h[i].keyed_kb, h[i].vms);
	}
	free(h);
	return 0;
}

/* S as a key serial (1 to 2^31 - 1, in C's notations), or 0 */
static key_serial_t serial_or_0(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *end || end == s || v <= 0 || v > 0x7fffffff)
		return 0;
	return v;
}

static key_serial_t parse_keyring(const char *s)
{
	static const struct { const char *name; key_serial_t id; } special[] = {
		{ "@t", KEY_SPEC_THREAD_KEYRING }, { "@p", KEY_SPEC_PROCESS_KEYRING },
		{ "@s", KEY_SPEC_SESSION_KEYRING }, { "@u", KEY_SPEC_USER_KEYRING },
		{ "@us", KEY_SPEC_USER_SESSION_KEYRING },
	};
	key_serial_t v;
	size_t i;

	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (!strcmp(s, special[i].name))
			return special[i].id;
	/* %:NAME, as keyctl writes it: a keyring in the user keyring, made
	 * if missing (the libvirt hook's is %:mktme-kvm) */
	if (!strncmp(s, "%:", 2) && s[2]) {
		v = keyctl_search(KEY_SPEC_USER_KEYRING, "keyring", s + 2, 0);
		if (v < 0 && errno == ENOKEY)
			v = add_key("keyring", s + 2, NULL, 0, KEY_SPEC_USER_KEYRING);
		if (v < 0)
			die(1, "can't find or create keyring %s: %s", s + 2,
			    strerror(errno));
		return v;
	}
	v = serial_or_0(s);
	if (!v)
		die(2, "bad keyring '%s': use @u, @s, @p, @t, @us, %%:NAME or a serial", s);
	return v;
}

/* Two hex strings, data key then tweak key, from a 0600-style secret file */
static void read_key_file(const char *path, char *key, char *tweak, size_t len)
{
	char buf[512], fmt[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		die(1, "can't open %s for the key: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		die(1, "can't read %s: %s", path, strerror(errno));
	buf[n] = 0;
	snprintf(fmt, sizeof(fmt), "%%%zus %%%zus", len - 1, len - 1);
	if (sscanf(buf, fmt, key, tweak) != 2) {
		explicit_bzero(buf, sizeof(buf));
		die(2, "%s must hold the data key and the tweak key, in hex, "
		    "separated by blanks", path);
	}
	explicit_bzero(buf, sizeof(buf));
}

static int act_key_add(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "keyring", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = NULL, *alg = NULL, *key_file = NULL, *why = NULL;
	char payload[MKTME_PAYLOAD_MAX], key[80] = "", tweak[80] = "";
	key_serial_t keyring = KEY_SPEC_USER_KEYRING, serial;
	int c, err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:a:k:r:", opts, NULL)) != -1) {
		switch (c) {
		case 't': type = optarg; break;
		case 'a': alg = optarg; break;
		case 'k': key_file = optarg; break;
		case 'r': keyring = parse_keyring(optarg); break;
		default: usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (key_file)
		read_key_file(key_file, key, tweak, sizeof(key));
	else if (type && !strcmp(type, "user"))
		die(2, "--type user needs --key-file FILE with the data and tweak keys");
	err = mktme_payload(payload, sizeof(payload), type, alg,
			    key_file ? key : NULL, key_file ? tweak : NULL, &why);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(tweak, sizeof(tweak));
	if (err)
		die(2, "%s", why);
	serial = add_key("mktme", argv[optind], payload, strlen(payload),
			 keyring);
	err = errno;
	explicit_bzero(payload, sizeof(payload));
	if (serial < 0) {
		switch (err) {
		case EACCES:
			die(1, "can't add key %s: permission denied (needs "
			    "CAP_SYS_RESOURCE)", argv[optind]);
		case ENOKEY:
			die(1, "can't add key %s: no KeyID free (see mktmectl "
			    "status, and the misc cgroup's mktme limit)",
			    argv[optind]);
		case ENODEV:
			die(1, "can't add key %s: no mktme key type in this "
			    "kernel", argv[optind]);
		default:
			die(1, "can't add key %s: %s", argv[optind], strerror(err));
		}
	}
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "serial", json_object_new_int64(serial));
		print_json(o);
	} else {
		printf("%d\n", serial);
	}
	return 0;
}

static key_serial_t parse_serial(const char *s)
{
	key_serial_t v = serial_or_0(s);

	if (!v)
		die(2, "bad key serial '%s'", s);
	return v;
}

static int act_key_revoke(int argc, char **argv)
{
	key_serial_t serial;

	if (argc != 2)
		usage();
	serial = parse_serial(argv[1]);
	if (keyctl_revoke(serial) < 0)
		die(1, "can't revoke key %d: %s", serial, strerror(errno));
	return 0;
}

static const struct command key_commands[] = {
	{ act_key_add, "add", "--type cpu|user|no-encrypt --algorithm aes-xts-128|aes-xts-256 [--key-file FILE] [--keyring KR] NAME" },
	{ act_key_revoke, "revoke", "SERIAL" },
	{ NULL, NULL, NULL },
};

static int act_key(int argc, char **argv)
{
	return do_subcommand(key_commands, argc, argv);
}

static const struct command top_commands[] = {
#ifdef MKTMECTL_LIBVIRT
	{ act_domain, "domain", "[--connect URI] enable|disable|show ..." },
#endif
	{ act_holders, "holders", "" },
	{ act_key, "key", "add|revoke ..." },
	{ act_keys, "keys", "" },
	{ act_status, "status", "" },
	{ NULL, NULL, NULL },
};

/* Exact or unique-prefix match, as keyctl does */
int do_command(const struct command *table, int argc, char **argv)
{
	const struct command *cmd, *found = NULL;
	size_t n = strlen(argv[0]);

	for (cmd = table; cmd->name; cmd++) {
		if (!strcmp(cmd->name, argv[0]))
			return cmd->action(argc, argv);
		if (!strncmp(cmd->name, argv[0], n)) {
			if (found)
				die(2, "ambiguous command '%s'", argv[0]);
			found = cmd;
		}
	}
	if (!found)
		die(2, "unknown command '%s' (mktmectl --help)", argv[0]);
	return found->action(argc, argv);
}

int do_subcommand(const struct command *table, int argc, char **argv)
{
	if (argc < 2)
		usage();
	return do_command(table, argc - 1, argv + 1);
}

/* One usage line per command of TABLE, after "mktmectl GROUP" */
static void usage_lines(const char *group, const struct command *table)
{
	const struct command *cmd;

	for (cmd = table; cmd->name; cmd++)
		fprintf(stderr, "  mktmectl %s%s %s\n", group, cmd->name, cmd->format);
}

void usage(void)
{
	fprintf(stderr, "usage: mktmectl [--json] COMMAND ...\n");
	usage_lines("", commands);
	usage_lines("key ", key_commands);
#ifdef MKTMECTL_LIBVIRT
	usage_lines("domain ", domain_commands);
#endif
	exit(2);
}

/* For tests: the environment variable NAME, if set, replaces *PATH */
static void path_from_env(const char **path, const char *name)
{
	const char *env = getenv(name);

	if (env)
		*path = env;
}

int main(int argc, char **argv)
{
	int i = 1;

	commands = top_commands;
	/* For tests: another sysfs directory, /proc/keys, /proc... */
	path_from_env(&sysfs_dir, "MKTMECTL_SYSFS");
	path_from_env(&proc_keys, "MKTMECTL_PROC_KEYS");
	path_from_env(&proc_dir, "MKTMECTL_PROC");
	path_from_env(&kvm_debugfs, "MKTMECTL_KVM_DEBUGFS");
	path_from_env(&mounts, "MKTMECTL_MOUNTS");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			json = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			usage();
		else
			die(2, "unknown option '%s' (mktmectl --help)", argv[i]);
	}
	if (i >= argc)
		usage();
	return do_command(commands, argc - i, argv + i);
}
