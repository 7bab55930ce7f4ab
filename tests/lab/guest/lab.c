// SPDX-License-Identifier: GPL-2.0
/* Guest side of the mktme-kvm lab (see lab.h) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "lab.h"

#define LAB_CHANNEL	"/dev/ttyS1"

static int tap_n, tap_failed;

void tap_begin(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("@@TAP-BEGIN\nTAP version 13\n");
}

int tap_end(void)
{
	printf("1..%d\n@@TAP-END\n", tap_n);
	return tap_failed ? 1 : 0;
}

static void tap_vline(bool ok, const char *directive, const char *fmt,
		      va_list ap)
{
	printf("%sok %d - ", ok ? "" : "not ", ++tap_n);
	vprintf(fmt, ap);
	if (directive)
		printf(" # %s", directive);
	printf("\n");
}

bool tap_ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vline(cond, NULL, fmt, ap);
	va_end(ap);
	if (!cond)
		tap_failed++;
	return cond;
}

void tap_skip(const char *why, const char *fmt, ...)
{
	char directive[256];
	va_list ap;

	snprintf(directive, sizeof(directive), "SKIP %s", why);
	va_start(ap, fmt);
	tap_vline(true, directive, fmt, ap);
	va_end(ap);
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Lab channel */

static FILE *chan;

static int chan_open(void)
{
	struct termios t;
	int fd;

	if (chan)
		return 0;
	fd = open(LAB_CHANNEL, O_RDWR | O_NOCTTY);
	if (fd < 0) {
		tap_diag("lab channel %s: %s", LAB_CHANNEL, strerror(errno));
		return -1;
	}
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	chan = fdopen(fd, "r+");
	return chan ? 0 : -1;
}

static json_object *lab_request(json_object *req)
{
	char *line = NULL;
	size_t cap = 0;
	json_object *reply, *ret;

	if (chan_open() < 0) {
		json_object_put(req);
		return NULL;
	}
	fprintf(chan, "%s\n", json_object_to_json_string_ext(req,
						JSON_C_TO_STRING_PLAIN));
	fflush(chan);
	json_object_put(req);
	if (getline(&line, &cap, chan) < 0) {
		free(line);
		tap_diag("lab channel closed");
		return NULL;
	}
	reply = json_tokener_parse(line);
	free(line);
	if (!reply)
		return NULL;
	if (!json_object_object_get_ex(reply, "return", &ret)) {
		tap_diag("lab request failed: %s",
			 json_object_to_json_string(reply));
		json_object_put(reply);
		return NULL;
	}
	json_object_get(ret);
	json_object_put(reply);
	return ret;
}

json_object *lab_qmp(const char *execute, json_object *args)
{
	json_object *cmd = json_object_new_object();
	json_object *req = json_object_new_object();

	json_object_object_add(cmd, "execute", json_object_new_string(execute));
	if (args)
		json_object_object_add(cmd, "arguments", args);
	json_object_object_add(req, "qmp", cmd);
	return lab_request(req);
}

json_object *lab_qmp_args(const char *execute, const char *args_json)
{
	return lab_qmp(execute, args_json ? json_tokener_parse(args_json) :
				NULL);
}

char *lab_hmp(const char *cmdline)
{
	json_object *req = json_object_new_object();
	json_object *ret;
	char *s;

	json_object_object_add(req, "hmp", json_object_new_string(cmdline));
	ret = lab_request(req);
	if (!ret)
		return NULL;
	s = strdup(json_object_get_string(ret));
	json_object_put(ret);
	return s;
}

static int hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t i;

	if (!hex || strlen(hex) != 2 * len)
		return -1;
	for (i = 0; i < len; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

static char *hex_encode(const uint8_t *in, size_t len)
{
	char *s = malloc(2 * len + 1);
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(s + 2 * i, "%02x", in[i]);
	s[2 * len] = 0;
	return s;
}

/* A request whose reply is len bytes in hex; 0 or -1 */
static int lab_request_hex(json_object *req, uint8_t *out, size_t len)
{
	json_object *ret = lab_request(req);
	int r;

	if (!ret)
		return -1;
	r = hex_decode(json_object_get_string(ret), out, len);
	json_object_put(ret);
	return r;
}

int lab_physread(uint64_t pa, void *buf, size_t len)
{
	json_object *req = json_object_new_object();
	json_object *a = json_object_new_object();

	json_object_object_add(a, "addr", json_object_new_uint64(pa));
	json_object_object_add(a, "len", json_object_new_uint64(len));
	json_object_object_add(req, "physread", a);
	return lab_request_hex(req, buf, len);
}

int lab_wakeup_after(double seconds)
{
	json_object *req = json_object_new_object(), *ret;

	json_object_object_add(req, "wakeup_after",
			       json_object_new_double(seconds));
	ret = lab_request(req);
	json_object_put(ret);
	return ret ? 0 : -1;
}

int lab_xts(const uint8_t *key, size_t key_len, uint64_t tweak,
	    const uint8_t *in, uint8_t *out, size_t len, bool decrypt)
{
	json_object *req = json_object_new_object();
	json_object *a = json_object_new_object();
	char *k = hex_encode(key, key_len), *d = hex_encode(in, len);

	json_object_object_add(a, "key", json_object_new_string(k));
	json_object_object_add(a, "tweak", json_object_new_uint64(tweak));
	json_object_object_add(a, "data", json_object_new_string(d));
	json_object_object_add(a, "decrypt", json_object_new_boolean(decrypt));
	json_object_object_add(req, "xts", a);
	free(k);
	free(d);
	return lab_request_hex(req, out, len);
}

static bool package_has_key(json_object *pkg, int keyid, const char *command,
			    const char *algorithm)
{
	json_object *keys, *k, *v;
	size_t j;

	if (!json_object_object_get_ex(pkg, "keys", &keys))
		return false;
	for (j = 0; j < json_object_array_length(keys); j++) {
		k = json_object_array_get_idx(keys, j);
		json_object_object_get_ex(k, "keyid", &v);
		if (json_object_get_int(v) != keyid)
			continue;
		json_object_object_get_ex(k, "command", &v);
		if (strcmp(json_object_get_string(v), command))
			return false;
		json_object_object_get_ex(k, "algorithm", &v);
		return !strcmp(json_object_get_string(v), algorithm);
	}
	return false;
}

bool lab_key_table_has(json_object *info, int socket, int keyid,
		       const char *command, const char *algorithm)
{
	json_object *pkgs, *pkg, *v;
	bool found = false;
	size_t i;

	if (!info || !json_object_object_get_ex(info, "packages", &pkgs))
		return false;
	for (i = 0; i < json_object_array_length(pkgs); i++) {
		pkg = json_object_array_get_idx(pkgs, i);
		json_object_object_get_ex(pkg, "socket", &v);
		if (socket >= 0 && json_object_get_int(v) != socket)
			continue;
		if (!package_has_key(pkg, keyid, command, algorithm))
			return false;
		found = true;
	}
	return found;
}

/* Test driver */

int lab_fd = -1;
struct mktme_lab_info lab_info;

int lab_open(void)
{
	lab_fd = open(MKTME_LAB_DEV, O_RDWR);
	if (lab_fd < 0) {
		tap_diag("%s: %s (is mktme_lab.ko loaded?)", MKTME_LAB_DEV,
			 strerror(errno));
		return -1;
	}
	return ioctl(lab_fd, MKTME_LAB_INFO, &lab_info);
}

int lab_pconfig(struct mktme_lab_pconfig *p)
{
	return ioctl(lab_fd, MKTME_LAB_PCONFIG, p);
}

int lab_msr_read(unsigned int cpu, uint32_t index, uint64_t *value)
{
	struct mktme_lab_msr m = { .cpu = cpu, .index = index };

	if (ioctl(lab_fd, MKTME_LAB_MSR, &m) < 0)
		return -errno;
	*value = m.value;
	return m.faulted ? -EIO : 0;
}

int lab_msr_write(unsigned int cpu, uint32_t index, uint64_t value)
{
	struct mktme_lab_msr m = { .cpu = cpu, .index = index,
				   .value = value, .write = 1 };

	if (ioctl(lab_fd, MKTME_LAB_MSR, &m) < 0)
		return -errno;
	return m.faulted ? -EIO : 0;
}

uint64_t lab_alloc_node(int node)
{
	uint64_t phys = node + 1;

	if (ioctl(lab_fd, MKTME_LAB_ALLOC_NODE, &phys) < 0) {
		tap_diag("page allocation: %s", strerror(errno));
		exit(2);
	}
	return phys;
}

uint64_t lab_alloc(void)
{
	return lab_alloc_node(-1);
}

void lab_free(uint64_t phys)
{
	ioctl(lab_fd, MKTME_LAB_FREE, &phys);
}

int lab_mem(struct mktme_lab_mem *m)
{
	return ioctl(lab_fd, MKTME_LAB_MEM, m) < 0 ? -errno : 0;
}

int lab_read(uint64_t phys, unsigned int keyid, unsigned int cpu,
	     unsigned int offset, void *buf, unsigned int len)
{
	struct mktme_lab_mem m = { .phys = phys, .keyid = keyid, .cpu = cpu,
				   .op = MKTME_LAB_READ, .offset = offset,
				   .len = len, .buf = (uintptr_t)buf };

	return lab_mem(&m);
}

int lab_write(uint64_t phys, unsigned int keyid, unsigned int cpu,
	      unsigned int offset, const void *buf, unsigned int len)
{
	struct mktme_lab_mem m = { .phys = phys, .keyid = keyid, .cpu = cpu,
				   .op = MKTME_LAB_WRITE, .offset = offset,
				   .len = len, .buf = (uintptr_t)buf };

	return lab_mem(&m);
}

int lab_clflush(uint64_t phys, unsigned int keyid, unsigned int cpu,
		unsigned int offset, unsigned int len)
{
	struct mktme_lab_mem m = { .phys = phys, .keyid = keyid, .cpu = cpu,
				   .op = MKTME_LAB_CLFLUSH, .offset = offset,
				   .len = len };

	return lab_mem(&m);
}

void key_program(struct mktme_lab_pconfig *p, unsigned int cpu,
		 uint16_t keyid, uint8_t cmd, uint32_t enc_alg,
		 const uint8_t *data_key, const uint8_t *tweak_key,
		 size_t key_len)
{
	uint32_t ctrl = cmd | enc_alg;

	memset(p, 0, sizeof(*p));
	p->cpu = cpu;
	memcpy(p->st, &keyid, 2);
	memcpy(p->st + 2, &ctrl, 4);
	if (data_key)
		memcpy(p->st + 64, data_key, key_len);
	if (tweak_key)
		memcpy(p->st + 128, tweak_key, key_len);
}

int program(unsigned int cpu, uint16_t keyid, uint8_t cmd, uint32_t enc_alg,
	    const uint8_t *data_key, const uint8_t *tweak_key, size_t key_len)
{
	struct mktme_lab_pconfig p;

	key_program(&p, cpu, keyid, cmd, enc_alg, data_key, tweak_key,
		    key_len);
	if (lab_pconfig(&p) < 0 || p.faulted)
		return -1;
	return p.status;
}

uint64_t lab_checker_count(const char *field)
{
	json_object *info = lab_qmp("query-mktme-checker", NULL), *v;
	uint64_t n = UINT64_MAX;

	if (info && json_object_object_get_ex(info, field, &v))
		n = json_object_get_uint64(v);
	json_object_put(info);
	return n;
}

int lab_write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}
