// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of QEMU's memory-backend-mktme, on the emulated host: the
 * patched lab kernel with KVM (kvm-amd on the emulated AMD model with SVM
 * and TME-MK) runs the patched QEMU with -accel kvm, whose guest is a small
 * Linux (a small kernel of its own, kvm/config-guest, and a busybox
 * initramfs with mktme_guest.c on its console).  Everything QEMU needs is
 * in /lab (tests/lab/qemu/stage-qemu.sh).
 *
 * Guest A (key A, two NUMA nodes): the guest writes a pattern on each node;
 * QEMU's xp reads the plaintext; the emulator's RAM at the host physical
 * address behind it holds AES-XTS of the pattern under key A, tweak = that
 * address; query-mktme-memory and info mktme-memory; a pc-dimm hotplugged
 * with memory-backend-mktme, and the hotplugs QEMU refuses.  Guest B at the
 * same time, with a key QEMU creates itself from a secret object: its
 * pattern under key B.  kill -9 of B's QEMU: its KeyID is released.  Guest
 * A migrates to a QEMU keyed with key C: the guest keeps running, its
 * memory intact, and RAM holds it under key C.  Then every start QEMU
 * refuses, each with its message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <keyutils.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

#define PAGE		4096
#define PATTERN(seed, a) (0x6d6b746d65000000ull ^ ((uint64_t)(seed) << 32) ^ (a))
#define LD		"/lab/ld-linux-x86-64.so.2"
#define BOOT_TIMEOUT	900
#define MAX_ARGS	64

struct key {
	uint8_t bytes[32];		/* data key, then tweak key */
	key_serial_t serial;
};

struct vm {
	const char *name;
	pid_t pid;
	FILE *qmp;
	int con;
	char conbuf[65536];
	size_t conlen;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static bool add_user_key(struct key *k, uint8_t seed, const char *desc)
{
	char payload[160], *p = payload;

	for (int i = 0; i < 32; i++)
		k->bytes[i] = seed + i * 7;
	p += sprintf(p, "type=user algorithm=aes-xts-128 key=");
	for (int i = 0; i < 16; i++)
		p += sprintf(p, "%02x", k->bytes[i]);
	p += sprintf(p, " tweak=");
	for (int i = 16; i < 32; i++)
		p += sprintf(p, "%02x", k->bytes[i]);
	k->serial = add_key("mktme", desc, payload, strlen(payload),
			    KEY_SPEC_SESSION_KEYRING);
	return k->serial > 0;
}

static int keyid_of(key_serial_t key, int *users)
{
	char line[512], id[16], *p;
	int keyid = -1;
	FILE *f = fopen("/proc/keys", "r");

	snprintf(id, sizeof(id), "%08x ", key);
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, id, strlen(id)))
			continue;
		if ((p = strstr(line, " keyid=")))
			keyid = atoi(p + 7);
		if (users && (p = strstr(line, " users=")))
			*users = atoi(p + 7);
	}
	if (f)
		fclose(f);
	return keyid;
}

static int keyids_in_use(void)
{
	char buf[32] = "";
	FILE *f = fopen("/sys/kernel/mm/mktme/keyids_in_use", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	return buf[0] ? atoi(buf) : -1;
}

/* QEMU */

static void qemu_exec(const char *name, char **extra, int err_fd)
{
	char *argv[MAX_ARGS];
	int n = 0;

	argv[n++] = LD;
	argv[n++] = "--library-path";
	argv[n++] = "/lab";
	argv[n++] = "/lab/qemu-system-x86_64";
	argv[n++] = "-accel";
	argv[n++] = "kvm";
	argv[n++] = "-cpu";
	argv[n++] = "host";
	argv[n++] = "-nodefaults";
	argv[n++] = "-vga";
	argv[n++] = "none";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-L";
	argv[n++] = "/lab";
	argv[n++] = "-name";
	argv[n++] = (char *)name;
	while (*extra && n < MAX_ARGS - 1)
		argv[n++] = *extra++;
	argv[n] = NULL;
	dup2(err_fd, 2);
	dup2(err_fd, 1);
	execv(LD, argv);
	_exit(127);
}

static int unix_connect(const char *path, double deadline)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	while (now() < deadline) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return fd;
		close(fd);
		usleep(100000);
	}
	return -1;
}

static json_object *qmp_read(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	json_object *o = NULL;

	while (getline(&line, &cap, f) > 0) {
		o = json_tokener_parse(line);
		if (o && !json_object_object_get_ex(o, "event", NULL))
			break;
		json_object_put(o);
		o = NULL;
	}
	free(line);
	return o;
}

/* The whole reply of a QMP command, or NULL */
static json_object *qmp(struct vm *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(v->qmp, fmt, ap);
	va_end(ap);
	fputc('\n', v->qmp);
	fflush(v->qmp);
	return qmp_read(v->qmp);
}

/* "return" of a QMP command (a new reference), NULL on error */
static json_object *qmp_ret(struct vm *v, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	json_object *r, *ret = NULL;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = qmp(v, "%s", cmd);
	if (r && json_object_object_get_ex(r, "return", &ret))
		json_object_get(ret);
	else
		tap_diag("%s: %s -> %s", v->name, cmd,
			 r ? json_object_to_json_string(r) : "(no reply)");
	json_object_put(r);
	return ret;
}

/* The error of a QMP command that must fail, "" if it did not */
static const char *qmp_error(struct vm *v, char *buf, size_t len,
			     const char *cmd)
{
	json_object *r = qmp(v, "%s", cmd), *e, *d;

	buf[0] = 0;
	if (r && json_object_object_get_ex(r, "error", &e) &&
	    json_object_object_get_ex(e, "desc", &d))
		snprintf(buf, len, "%s", json_object_get_string(d));
	json_object_put(r);
	return buf;
}

static char *hmp(struct vm *v, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	json_object *args, *r;
	char *out = NULL;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	args = json_object_new_object();
	json_object_object_add(args, "command-line",
			       json_object_new_string(cmd));
	r = qmp_ret(v, "{\"execute\":\"human-monitor-command\",\"arguments\":%s}",
		    json_object_to_json_string(args));
	if (r)
		out = strdup(json_object_get_string(r));
	json_object_put(r);
	json_object_put(args);
	return out;
}

static bool vm_start(struct vm *v, const char *name, char **extra)
{
	char path[64], qmpopt[96], conopt[96], errpath[64];
	char *argv[MAX_ARGS];
	int n = 0, err;
	double deadline = now() + 60;

	memset(v, 0, sizeof(*v));
	v->name = name;
	v->con = -1;
	snprintf(qmpopt, sizeof(qmpopt), "unix:/tmp/%s.qmp,server=on,wait=off",
		 name);
	snprintf(conopt, sizeof(conopt),
		 "socket,id=con,path=/tmp/%s.con,server=on,wait=off", name);
	snprintf(errpath, sizeof(errpath), "/tmp/%s.log", name);
	argv[n++] = "-qmp";
	argv[n++] = qmpopt;
	argv[n++] = "-chardev";
	argv[n++] = conopt;
	argv[n++] = "-serial";
	argv[n++] = "chardev:con";
	while (*extra && n < MAX_ARGS - 1)
		argv[n++] = *extra++;
	argv[n] = NULL;
	err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	v->pid = fork();
	if (!v->pid)
		qemu_exec(name, argv, err);
	close(err);
	snprintf(path, sizeof(path), "/tmp/%s.qmp", name);
	n = unix_connect(path, deadline);
	if (n < 0)
		return false;
	v->qmp = fdopen(n, "r+");
	json_object_put(qmp_read(v->qmp));	/* greeting */
	json_object_put(qmp(v, "{\"execute\":\"qmp_capabilities\"}"));
	snprintf(path, sizeof(path), "/tmp/%s.con", name);
	v->con = unix_connect(path, deadline);
	return v->con >= 0;
}

static void vm_kill(struct vm *v, int sig)
{
	if (v->pid > 0) {
		kill(v->pid, sig);
		waitpid(v->pid, NULL, 0);
		v->pid = 0;
	}
	if (v->qmp)
		fclose(v->qmp);
	if (v->con >= 0)
		close(v->con);
	v->qmp = NULL;
	v->con = -1;
}

/*
 * Wait for a console line starting with @prefix that comes after what
 * was consumed; copies the rest of the line to @out.  The console is
 * kept in the log /tmp/NAME.console.
 */
static bool con_wait(struct vm *v, const char *prefix, char *out, size_t len,
		     int timeout)
{
	double deadline = now() + timeout;

	for (;;) {
		char *nl, *line = v->conbuf;
		struct pollfd p = { .fd = v->con, .events = POLLIN };
		ssize_t r;

		while ((nl = memchr(line, '\n', v->conbuf + v->conlen - line))) {
			*nl = 0;
			if (nl > line && nl[-1] == '\r')
				nl[-1] = 0;
			if (!strncmp(line, prefix, strlen(prefix))) {
				if (out)
					snprintf(out, len, "%s", line + strlen(prefix));
				v->conlen -= nl + 1 - v->conbuf;
				memmove(v->conbuf, nl + 1, v->conlen);
				return true;
			}
			line = nl + 1;
		}
		v->conlen -= line - v->conbuf;
		memmove(v->conbuf, line, v->conlen);
		if (now() > deadline || v->conlen == sizeof(v->conbuf) - 1)
			return false;
		if (poll(&p, 1, 1000) <= 0)
			continue;
		r = read(v->con, v->conbuf + v->conlen,
			 sizeof(v->conbuf) - 1 - v->conlen);
		if (r <= 0)
			return false;
		v->conlen += r;
	}
}

static void con_send(struct vm *v, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(v->con, buf, n) != n)
		tap_diag("%s: console write failed", v->name);
}

/*
 * Each line of text (modified; NULL: none) as a diagnostic after prefix,
 * only those beginning with only if it is not NULL
 */
static void diag_lines(const char *prefix, char *text, const char *only)
{
	for (char *l = text ? strtok(text, "\r\n") : NULL; l;
	     l = strtok(NULL, "\r\n"))
		if (!only || !strncmp(l, only, strlen(only)))
			tap_diag("%s%s", prefix, l);
}

/* What went wrong with a guest: QEMU's state, log and the console's tail */
static void vm_diag(struct vm *v)
{
	char path[64], prefix[64], buf[2048];
	int status;
	size_t n;
	FILE *f;

	if (v->pid > 0 && waitpid(v->pid, &status, WNOHANG) == v->pid) {
		tap_diag("%s: QEMU exited (status %#x)", v->name, status);
		v->pid = 0;
	}
	snprintf(path, sizeof(path), "/tmp/%s.log", v->name);
	f = fopen(path, "r");
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	snprintf(prefix, sizeof(prefix), "%s: QEMU: ", v->name);
	diag_lines(prefix, buf, NULL);
	/* Where QEMU's vCPU threads are in the host kernel */
	if (v->pid > 0) {
		char cmd[160];
		FILE *p;

		snprintf(cmd, sizeof(cmd), "cd /proc/%d/task && for t in *; do "
			 "echo \"$t $(cat $t/comm): $(cat $t/wchan)\"; "
			 "grep -q CPU $t/comm && head -12 $t/stack; done", v->pid);
		p = popen(cmd, "r");
		while (p && fgets(buf, sizeof(buf), p)) {
			buf[strcspn(buf, "\n")] = 0;
			tap_diag("%s: task %s", v->name, buf);
		}
		if (p)
			pclose(p);
	}
	if (v->qmp) {
		char *regs = hmp(v, "info registers");
		json_object *st = qmp_ret(v, "{\"execute\":\"query-status\"}");

		tap_diag("%s: status %s", v->name,
			 st ? json_object_to_json_string(st) : "?");
		json_object_put(st);
		for (char *l = regs ? strtok(regs, "\r\n") : NULL; l;
		     l = strtok(NULL, "\r\n"))
			if (!strncmp(l, "RAX", 3) || !strncmp(l, "RIP", 3))
				tap_diag("%s: %s", v->name, l);
		free(regs);
	}
	n = v->conlen < 1024 ? v->conlen : 1024;
	memcpy(buf, v->conbuf + v->conlen - n, n);
	buf[n] = 0;
	snprintf(prefix, sizeof(prefix), "%s: console: ", v->name);
	diag_lines(prefix, buf, NULL);
}

/* A page the guest filled with the pattern of @seed, in [lo, hi) */
static uint64_t guest_touch(struct vm *v, uint64_t lo, uint64_t hi,
			    unsigned int seed, int node)
{
	char out[64] = "";

	con_send(v, "touch %" PRIx64 " %" PRIx64 " %x %d\n", lo, hi, seed, node);
	if (!con_wait(v, "mktme-guest: ", out, sizeof(out), 120) ||
	    strncmp(out, "page ", 5)) {
		tap_diag("%s: touch: %s", v->name, out);
		vm_diag(v);
		return 0;
	}
	return strtoull(out + 5, NULL, 0);
}

/* QEMU's host physical address of a guest physical address */
static uint64_t hpa_of(struct vm *v, uint64_t gpa)
{
	char *out = hmp(v, "gpa2hva %#" PRIx64, gpa), *p, path[64];
	uint64_t hva, e = 0;
	int fd;

	p = out ? strstr(out, " is 0x") : NULL;
	if (!p) {
		tap_diag("%s: gpa2hva: %s", v->name, out ? out : "(none)");
		free(out);
		return 0;
	}
	hva = strtoull(p + 4, NULL, 16);
	free(out);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", v->pid);
	fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, &e, sizeof(e), hva / PAGE * sizeof(e)) !=
	    sizeof(e))
		e = 0;
	if (fd >= 0)
		close(fd);
	return e >> 63 ? (e & ((1ull << 55) - 1)) * PAGE + hva % PAGE : 0;
}

/* Does QEMU's xp show the pattern at @gpa? */
static bool xp_is_plaintext(struct vm *v, uint64_t gpa, unsigned int seed)
{
	char *out = hmp(v, "xp /2gx %#" PRIx64, gpa), *p;
	uint64_t w0, w1;
	bool ok;

	p = out ? strchr(out, ':') : NULL;
	ok = p && sscanf(p + 1, " %" SCNx64 " %" SCNx64, &w0, &w1) == 2 &&
	     w0 == PATTERN(seed, gpa) && w1 == PATTERN(seed, gpa + 8);
	if (!ok)
		tap_diag("%s: xp: %s", v->name, out ? out : "(none)");
	free(out);
	return ok;
}

/* Does the emulator's RAM at @hpa hold AES-XTS of the pattern under @k? */
static bool ram_is_ciphertext(const struct key *k, uint64_t hpa, uint64_t gpa,
			      unsigned int seed)
{
	static uint64_t plain[PAGE / 8];
	static uint8_t ct[PAGE], ref[PAGE];

	if (!hpa || lab_physread(hpa, ct, PAGE))
		return false;
	for (int i = 0; i < PAGE / 8; i++)
		plain[i] = PATTERN(seed, gpa + i * 8);
	for (size_t i = 0; i < PAGE; i += 16)
		if (lab_xts(k->bytes, sizeof(k->bytes), hpa + i,
			    (uint8_t *)plain + i, ref + i, 16, false) < 0)
			return false;
	return !memcmp(ct, ref, PAGE);
}

/* The guest page at @gpa: plaintext for QEMU, ciphertext under @k in RAM */
static void check_page(struct vm *v, const struct key *k, uint64_t gpa,
		       unsigned int seed, const char *what)
{
	uint64_t hpa;

	if (!tap_ok(gpa, "%s: %s: the guest wrote its pattern at a page "
		    "(GPA %#" PRIx64 ")", v->name, what, gpa)) {
		tap_skip("no page", "%s: %s: xp", v->name, what);
		tap_skip("no page", "%s: %s: RAM", v->name, what);
		return;
	}
	tap_ok(xp_is_plaintext(v, gpa, seed), "%s: %s: QEMU's xp reads the "
	       "guest's plaintext at GPA %#" PRIx64, v->name, what, gpa);
	hpa = hpa_of(v, gpa);
	tap_ok(ram_is_ciphertext(k, hpa, gpa, seed), "%s: %s: the emulator's "
	       "RAM at host physical address %#" PRIx64 " holds AES-XTS-128 "
	       "of it under the guest's key, tweak = that address", v->name,
	       what, hpa);
}

/*
 * The guest checks every page it filled; on failure its answer (the first
 * wrong page and word) as a diagnostic, that page's GPA in *bad
 */
static bool guest_check(struct vm *v, uint64_t *bad, const char *fmt, ...)
{
	char out[256] = "(no answer)", what[256];
	unsigned long long gpa;
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	con_send(v, "check\n");
	ok = con_wait(v, "mktme-guest: check ", out, sizeof(out), 120) &&
	     !strncmp(out, "ok ", 3);
	if (!tap_ok(ok, "%s", what))
		tap_diag("%s: the guest's check: %s", v->name, out);
	if (bad)
		*bad = !ok && sscanf(out, "bad %*d first %llx", &gpa) == 1 ?
		       gpa : 0;
	return ok;
}

/* The emulator's keyed pages and owner changes so far, a diagnostic */
static void emulator_diag(const char *when)
{
	char *s = lab_hmp("info mktme"), prefix[64];

	snprintf(prefix, sizeof(prefix), "emulator, %s: ", when);
	diag_lines(prefix, s, "keyed pages");
	free(s);
}

/* 32 bytes at a guest physical address as QEMU reads them, a diagnostic */
static void xp_diag(struct vm *v, uint64_t gpa)
{
	char *s = hmp(v, "xp /4gx %#" PRIx64, gpa), prefix[64];

	snprintf(prefix, sizeof(prefix), "%s: xp: ", v->name);
	diag_lines(prefix, s, NULL);
	free(s);
}

static bool boot(struct vm *v, const char *name, char **args)
{
	double t0 = now();
	bool ok = vm_start(v, name, args) &&
		  con_wait(v, "mktme-guest: ready", NULL, 0, BOOT_TIMEOUT);

	if (!tap_ok(ok, "%s: QEMU starts with -accel kvm and the guest's Linux "
		    "reaches init (%.0f s)", name, now() - t0))
		vm_diag(v);
	return ok;
}

/* Does query-mktme-memory say what it should? */
static void check_query(struct vm *v, const struct key *k,
			const char *backends)
{
	json_object *r = qmp_ret(v, "{\"execute\":\"query-mktme-memory\"}");
	json_object *o;
	const char *s = r ? json_object_to_json_string_ext(r,
				JSON_C_TO_STRING_PLAIN) : "";
	char want[256];
	int keyid = keyid_of(k->serial, NULL);
	bool ok;

	ok = r && json_object_object_get_ex(r, "enabled", &o) &&
	     json_object_get_boolean(o) &&
	     json_object_object_get_ex(r, "key", &o) &&
	     json_object_get_int(o) == k->serial &&
	     json_object_object_get_ex(r, "keyid", &o) &&
	     json_object_get_int(o) == keyid &&
	     json_object_object_get_ex(r, "kvm", &o) &&
	     json_object_get_boolean(o) &&
	     json_object_object_get_ex(r, "key-type", &o) &&
	     !strcmp(json_object_get_string(o), "user") &&
	     json_object_object_get_ex(r, "algorithm", &o) &&
	     !strcmp(json_object_get_string(o), "aes-xts-128");
	snprintf(want, sizeof(want), "\"backends\":[%s]", backends);
	ok = ok && strstr(s, want);
	tap_ok(ok, "%s: query-mktme-memory: enabled, key %d, KeyID %d, "
	       "user/aes-xts-128, KVM bound, backends [%s]", v->name,
	       k->serial, keyid, backends);
	if (!ok)
		tap_diag("%s", s);
	json_object_put(r);
}

/* mktmectl holders: does @pid hold the KeyID of @k with one VM? */
static bool holder_has_vm(const struct key *k, pid_t pid)
{
	char out[8192];
	json_object *a, *h, *v;
	int keyid = keyid_of(k->serial, NULL);
	bool found = false;
	size_t n;
	FILE *p = popen("mktmectl --json holders 2>/dev/null", "r");

	if (!p)
		return false;
	n = fread(out, 1, sizeof(out) - 1, p);
	pclose(p);
	out[n] = 0;
	a = json_tokener_parse(out);
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		h = json_object_array_get_idx(a, i);
		found |= json_object_object_get_ex(h, "keyid", &v) &&
			 json_object_get_int(v) == keyid &&
			 json_object_object_get_ex(h, "pid", &v) &&
			 json_object_get_int(v) == pid &&
			 json_object_object_get_ex(h, "vms", &v) &&
			 json_object_get_int(v) == 1;
	}
	json_object_put(a);
	if (!found)
		tap_diag("mktmectl holders: %s", out);
	return found;
}

/*
 * A start QEMU must refuse: it exits with an error whose message holds
 * @want, and leaves no KeyID behind
 */
static void refused(const char *what, const char *want, ...)
{
	char *argv[MAX_ARGS], log[8192] = "";
	int n = 0, status = 0, err, before = keyids_in_use();
	va_list ap;
	pid_t pid;
	FILE *f;

	va_start(ap, want);
	while (n < MAX_ARGS - 1 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	err = open("/tmp/refused.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		   0644);
	pid = fork();
	if (!pid)
		qemu_exec("refused", argv, err);
	close(err);
	waitpid(pid, &status, 0);
	f = fopen("/tmp/refused.log", "r");
	if (f) {
		n = fread(log, 1, sizeof(log) - 1, f);
		log[n > 0 ? n : 0] = 0;
		fclose(f);
	}
	if (strchr(log, '\n'))
		*strchr(log, '\n') = 0;
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 1 &&
	       strstr(log, want) && keyids_in_use() == before,
	       "refused: %s: \"%s\"", what, log);
}

static char *opt(const char *fmt, ...)
{
	static char bufs[16][256];
	static int i;
	char *b = bufs[i++ % 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, 256, fmt, ap);
	va_end(ap);
	return b;
}

static void test_errors(const struct key *a)
{
	struct key other, revoked, noread;
	key_serial_t plain;

	tap_ok(add_user_key(&revoked, 0x70, "qemu-revoked") &&
	       add_user_key(&noread, 0x90, "qemu-noread") &&
	       add_user_key(&other, 0xb0, "qemu-other") &&
	       !keyctl_revoke(revoked.serial) &&
	       !keyctl_setperm(noread.serial, KEY_POS_VIEW | KEY_POS_SEARCH |
			       KEY_POS_SETATTR | KEY_USR_VIEW),
	       "errors: keys for them: a revoked one, one QEMU may not read");
	plain = add_key("user", "qemu-plain", "x", 1, KEY_SPEC_SESSION_KEYRING);

#define M "-machine", "pc,memory-backend=m", "-m", "64M", "-S"
	refused("no such key", "key 1234567 does not exist", M, "-object",
		"memory-backend-mktme,id=m,size=64M,key=1234567", NULL);
	refused("key revoked", "was revoked", M, "-object",
		opt("memory-backend-mktme,id=m,size=64M,key=%d", revoked.serial),
		NULL);
	refused("no read permission", "may not read key", M, "-object",
		opt("memory-backend-mktme,id=m,size=64M,key=%d", noread.serial),
		NULL);
	refused("not an mktme key", "is not an mktme key", M, "-object",
		opt("memory-backend-mktme,id=m,size=64M,key=%d", plain), NULL);
	refused("no key given", "needs one of key=SERIAL", M, "-object",
		"memory-backend-mktme,id=m,size=64M", NULL);
	refused("two ways to give the key", "needs only one of", M, "-object",
		opt("memory-backend-mktme,id=m,size=64M,key=%d,key-type=cpu",
		    a->serial), NULL);
	refused("no key of that description", "no mktme key described "
		"'nobody'", M, "-object",
		"memory-backend-mktme,id=m,size=64M,key-description=nobody",
		NULL);
	refused("share=on", "cannot be shared: remove share=on", M, "-object",
		opt("memory-backend-mktme,id=m,size=64M,share=on,key=%d",
		    a->serial), NULL);
	refused("mem-path", "mem-path", M, "-object",
		opt("memory-backend-mktme,id=m,size=64M,mem-path=/tmp,key=%d",
		    a->serial), NULL);
	refused("merge=on", "cannot be merged", M, "-object",
		opt("memory-backend-mktme,id=m,size=64M,merge=on,key=%d",
		    a->serial), NULL);
	refused("key-type=user without key-secret", "needs the key bytes",
		M, "-object",
		"memory-backend-mktme,id=m,size=64M,key-type=user", NULL);
#undef M
#define N "-m", "64M", "-S", "-numa", "node,memdev=m0", "-numa", \
	"node,memdev=m1", "-object"
	refused("two NUMA nodes with two keys", "has another key than the "
		"guest's RAM", N,
		opt("memory-backend-mktme,id=m0,size=32M,key=%d", a->serial),
		"-object",
		opt("memory-backend-mktme,id=m1,size=32M,key=%d", other.serial),
		NULL);
	refused("a NUMA node with plaintext RAM", "memory backend 'm1' is not "
		"encrypted but the guest's RAM is", N,
		opt("memory-backend-mktme,id=m0,size=32M,key=%d", a->serial),
		"-object", "memory-backend-ram,id=m1,size=32M", NULL);
#undef N
	keyctl_invalidate(other.serial);
	keyctl_invalidate(revoked.serial);
	keyctl_invalidate(noread.serial);
	keyctl_invalidate(plain);
}

/* Every KeyID in use: key-type=cpu is refused, naming the cause */
static void test_exhausted(void)
{
	key_serial_t fill[64];
	int n = 0;
	char desc[32];

	do {
		snprintf(desc, sizeof(desc), "qemu-fill-%d", n);
		fill[n] = add_key("mktme", desc,
				  "type=cpu algorithm=aes-xts-128", 30,
				  KEY_SPEC_SESSION_KEYRING);
	} while (fill[n] > 0 && ++n < 64);
	refused("every KeyID in use", "every TME-MK KeyID is in use",
		"-machine", "pc,memory-backend=m", "-m", "64M", "-S", "-object",
		"memory-backend-mktme,id=m,size=64M,key-type=cpu", NULL);
	while (n--)
		keyctl_invalidate(fill[n]);
}

static void write_secret(const struct key *k)
{
	FILE *f = fopen("/tmp/key-b.bin", "w");

	if (f) {
		fwrite(k->bytes, 1, sizeof(k->bytes), f);
		fclose(f);
	}
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/*
 * make bench: the same guest booted with memory-backend-ram and with
 * memory-backend-mktme, alternately: QEMU's start (to its monitor) and the
 * boot to the guest's init (its program's first line)
 */
static int bench(int runs)
{
	double start[2][16], init[2][16];
	struct vm v;

	if (runs > 16)
		runs = 16;
	for (int i = 0; i < runs; i++) {
		for (int m = 0; m < 2; m++) {
			double t0 = now();
			bool ok = vm_start(&v, m ? "bench-mktme" : "bench-ram",
					   (char *[]){
				"-m", "256M", "-machine", "pc,memory-backend=ram0",
				"-object", m ? "memory-backend-mktme,id=ram0,size=256M,"
					       "key-type=cpu,algorithm=aes-xts-128" :
					       "memory-backend-ram,id=ram0,size=256M",
				"-kernel", "/lab/vmlinuz-guest",
				"-initrd", "/lab/guest.cpio.gz",
				"-append", "console=ttyS0 quiet printk.time=0", NULL });

			start[m][i] = now() - t0;
			ok = ok && con_wait(&v, "mktme-guest: ready", NULL, 0,
					    BOOT_TIMEOUT);
			init[m][i] = now() - t0;
			tap_ok(ok, "bench: run %d, memory-backend-%s: start "
			       "%.2f s, init %.1f s", i + 1, m ? "mktme" : "ram",
			       start[m][i], init[m][i]);
			vm_kill(&v, SIGTERM);
		}
	}
	printf("@@BENCH {\"runs\": %d, \"start_ram\": %.3f, "
	       "\"start_mktme\": %.3f, \"init_ram\": %.2f, "
	       "\"init_mktme\": %.2f}\n", runs, median(start[0], runs),
	       median(start[1], runs), median(init[0], runs),
	       median(init[1], runs));
	return tap_end();
}

int main(int argc, char **argv)
{
	struct key a, b, c;
	struct vm va, vb, vc;
	char err[512], *out;
	uint64_t gpa0, gpa1, dimm_gpa = 0;
	json_object *r;
	int before, after, users = 0;
	double t0;

	tap_begin();
	keyctl_join_session_keyring(NULL);
	if (argc > 1 && !strcmp(argv[1], "bench"))
		return bench(argc > 2 ? atoi(argv[2]) : 3);
	if (!tap_ok(access("/dev/kvm", R_OK | W_OK) == 0 &&
		    add_user_key(&a, 0x11, "qemu-a") &&
		    add_user_key(&c, 0x33, "qemu-c"),
		    "/dev/kvm and two user keys (A, C)"))
		return tap_end();
	/* B's key is QEMU's own, from a secret object with these bytes */
	for (int i = 0; i < 32; i++)
		b.bytes[i] = 0x22 + i * 5;
	write_secret(&b);

	/* Guest A: two NUMA nodes, keyed with A; room for a DIMM on node 1 */
	if (!boot(&va, "A", (char *[]){
		"-m", "160M,slots=2,maxmem=1G", "-smp", "1",
		"-object", opt("memory-backend-mktme,id=ram0,size=128M,key=%d",
			       a.serial),
		"-object", opt("memory-backend-mktme,id=ram1,size=32M,key=%d",
			       a.serial),
		"-numa", "node,nodeid=0,memdev=ram0",
		"-numa", "node,nodeid=1,memdev=ram1",
		"-kernel", "/lab/vmlinuz-guest", "-initrd", "/lab/guest.cpio.gz",
		"-append", "console=ttyS0 quiet printk.time=0 memhp_default_state=online",
		NULL }))
		return tap_end();
	gpa0 = guest_touch(&va, 0, 128 << 20, 0xa0, 0);
	check_page(&va, &a, gpa0, 0xa0, "NUMA node 0");
	gpa1 = guest_touch(&va, 128 << 20, 160 << 20, 0xa1, 1);
	check_page(&va, &a, gpa1, 0xa1, "NUMA node 1");
	check_query(&va, &a, "\"ram0\",\"ram1\"");
	out = hmp(&va, "info mktme-memory");
	if (!tap_ok(out && strstr(out, "KVM: bound to the key") &&
		    strstr(out, "backends: ram0 ram1"),
		    "A: info mktme-memory: the key, KVM bound, the backends"))
		tap_diag("%s", out ? out : "(none)");
	free(out);
	tap_ok(holder_has_vm(&a, va.pid), "A: mktmectl holders: QEMU holds "
	       "key A's KeyID with one VM");

	/* Hotplug: a DIMM on node 1 keyed with A; refused other ways */
	qmp_error(&va, err, sizeof(err), opt("{\"execute\":\"object-add\","
		  "\"arguments\":{\"qom-type\":\"memory-backend-mktme\","
		  "\"id\":\"bad\",\"size\":134217728,\"key\":%d}}", c.serial));
	tap_ok(strstr(err, "has another key than the guest's RAM"),
	       "A: hotplug: a backend with another key is refused: \"%s\"",
	       err);
	json_object_put(qmp_ret(&va, "{\"execute\":\"object-add\",\"arguments\":"
		"{\"qom-type\":\"memory-backend-ram\",\"id\":\"plain\","
		"\"size\":134217728}}"));
	qmp_error(&va, err, sizeof(err), "{\"execute\":\"device_add\","
		  "\"arguments\":{\"driver\":\"pc-dimm\",\"id\":\"dplain\","
		  "\"memdev\":\"plain\",\"node\":1}}");
	tap_ok(strstr(err, "memory backend 'plain' is not encrypted"),
	       "A: hotplug: a pc-dimm of memory-backend-ram is refused: \"%s\"",
	       err);
	json_object_put(qmp(&va, "{\"execute\":\"object-del\",\"arguments\":"
			    "{\"id\":\"plain\"}}"));
	r = qmp_ret(&va, "{\"execute\":\"object-add\",\"arguments\":{"
		    "\"qom-type\":\"memory-backend-mktme\",\"id\":\"dimm0\","
		    "\"size\":134217728,\"key\":%d}}", a.serial);
	json_object_put(r);
	if (r)
		r = qmp_ret(&va, "{\"execute\":\"device_add\",\"arguments\":{"
			    "\"driver\":\"pc-dimm\",\"id\":\"d0\","
			    "\"memdev\":\"dimm0\",\"node\":1}}");
	tap_ok(r != NULL, "A: hotplug: object-add memory-backend-mktme with "
	       "key A and device_add pc-dimm on node 1");
	json_object_put(r);
	r = qmp_ret(&va, "{\"execute\":\"query-memory-devices\"}");
	if (r && json_object_array_length(r) == 1) {
		json_object *d, *addr;

		if (json_object_object_get_ex(json_object_array_get_idx(r, 0),
					      "data", &d) &&
		    json_object_object_get_ex(d, "addr", &addr))
			dimm_gpa = json_object_get_int64(addr);
	}
	json_object_put(r);
	if (dimm_gpa) {
		uint64_t g = guest_touch(&va, dimm_gpa, dimm_gpa + (128 << 20),
					 0xd0, 1);

		check_page(&va, &a, g, 0xd0, "the hotplugged DIMM");
		check_query(&va, &a, "\"ram0\",\"ram1\",\"dimm0\"");
	} else {
		tap_ok(false, "A: the DIMM's address");
	}

	guest_check(&va, NULL, "A: the guest's pages are intact before "
		    "its migration");
	/* Migration of A to a QEMU keyed with C */
	emulator_diag("before the migration");
	t0 = now();
	vm_start(&vc, "C", (char *[]){
		"-m", "160M,slots=2,maxmem=1G", "-smp", "1",
		"-object", opt("memory-backend-mktme,id=ram0,size=128M,key=%d",
			       c.serial),
		"-object", opt("memory-backend-mktme,id=ram1,size=32M,key=%d",
			       c.serial),
		"-object", opt("memory-backend-mktme,id=dimm0,size=128M,key=%d",
			       c.serial),
		"-device", "pc-dimm,id=d0,memdev=dimm0,node=1",
		"-numa", "node,nodeid=0,memdev=ram0",
		"-numa", "node,nodeid=1,memdev=ram1",
		"-kernel", "/lab/vmlinuz-guest", "-initrd", "/lab/guest.cpio.gz",
		"-append", "console=ttyS0 quiet printk.time=0 memhp_default_state=online",
		"-incoming", "unix:/tmp/migrate.sock", NULL });
	json_object_put(qmp_ret(&va, "{\"execute\":\"migrate\",\"arguments\":"
				"{\"uri\":\"unix:/tmp/migrate.sock\"}}"));
	for (int i = 0; i < 600; i++) {
		const char *s;

		r = vc.qmp ? qmp_ret(&vc, "{\"execute\":\"query-status\"}") : NULL;
		s = r && json_object_object_get_ex(r, "status", &r) ?
			json_object_get_string(r) : "";
		if (!strcmp(s, "running"))
			break;
		usleep(500000);
	}
	r = vc.qmp ? qmp_ret(&vc, "{\"execute\":\"query-status\"}") : NULL;
	tap_ok(r && strstr(json_object_to_json_string(r), "running"),
	       "migration: A (key A) to a QEMU keyed with C: the guest runs "
	       "there (%.0f s)", now() - t0);
	json_object_put(r);
	emulator_diag("after it");
	if (vc.con >= 0) {
		uint64_t bad;

		/* On failure, what the source (paused, still there) has */
		if (!guest_check(&vc, &bad, "migration: the guest's pages are "
				 "intact after it") && bad) {
			xp_diag(&va, bad);
			xp_diag(&vc, bad);
		}
	}
	vm_kill(&va, SIGTERM);
	if (vc.con >= 0) {
		check_page(&vc, &c, gpa0, 0xa0, "migrated, node 0");
		check_page(&vc, &c, gpa1, 0xa1, "migrated, node 1");
		check_query(&vc, &c, "\"ram0\",\"ram1\",\"dimm0\"");
	}
	/* Guest B beside the migrated guest, with the key QEMU makes */
	boot(&vb, "B", (char *[]){
		"-m", "128M", "-machine", "pc,memory-backend=ram0",
		"-object", "secret,id=kb,file=/tmp/key-b.bin,format=raw",
		"-object", "memory-backend-mktme,id=ram0,size=128M,"
			   "key-type=user,algorithm=aes-xts-128,key-secret=kb",
		"-kernel", "/lab/vmlinuz-guest", "-initrd", "/lab/guest.cpio.gz",
		"-append", "console=ttyS0 quiet printk.time=0", NULL });

	/* B: same pattern seed, another key, another ciphertext */
	if (vb.pid) {
		uint64_t g = guest_touch(&vb, 0, 128 << 20, 0xa0, -1);
		json_object *o;

		check_page(&vb, &b, g, 0xa0, "QEMU's own key");
		r = qmp_ret(&vb, "{\"execute\":\"query-mktme-memory\"}");
		b.serial = r && json_object_object_get_ex(r, "key", &o) ?
			   json_object_get_int(o) : 0;
		tap_ok(b.serial > 0 && b.serial != a.serial && keyid_of(b.serial, NULL) > 0 &&
		       keyid_of(b.serial, NULL) != keyid_of(a.serial, NULL),
		       "B: its key (%d, KeyID %d) and A's (%d, KeyID %d): two "
		       "guests, two keys, two KeyIDs", b.serial,
		       keyid_of(b.serial, NULL), a.serial,
		       keyid_of(a.serial, NULL));
		json_object_put(r);
		before = keyids_in_use();
		vm_kill(&vb, SIGKILL);
		for (int i = 0; i < 50 && keyids_in_use() >= before; i++)
			usleep(100000);
		after = keyids_in_use();
		tap_ok(after == before - 1 && keyid_of(b.serial, NULL) < 0,
		       "B: kill -9 of QEMU releases its KeyID (in use %d -> "
		       "%d) and its key", before, after);
	}

	/* C (A migrated) runs on, its pages intact, with B beside it */
	if (!guest_check(&vc, NULL, "C: the guest keyed with C answers, its "
			 "pages intact, after guest B (another key) ran "
			 "beside it"))
		vm_diag(&vc);

	vm_kill(&vc, SIGTERM);
	keyid_of(a.serial, &users);
	tap_ok(users == 1, "key A: only the key itself holds its KeyID once "
	       "its QEMU is gone (users=%d)", users);

	test_errors(&a);
	test_exhausted();
	keyctl_invalidate(a.serial);
	keyctl_invalidate(c.serial);
	return tap_end();
}
