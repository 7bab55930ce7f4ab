// SPDX-License-Identifier: GPL-2.0
/* The monitor relay: see qmp_proxy.h */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qemu_argv.h"
#include "qmp_proxy.h"

#define MAX_FDS		16
#define BUF_SIZE	65536

static char *error_reply(json_object *cmd, const char *desc)
{
	json_object *r = json_object_new_object(), *err = json_object_new_object(), *id;
	char *text;

	json_object_object_add(err, "class", json_object_new_string("GenericError"));
	json_object_object_add(err, "desc", json_object_new_string(desc));
	json_object_object_add(r, "error", err);
	if (cmd && json_object_object_get_ex(cmd, "id", &id))
		json_object_object_add(r, "id", json_object_get(id));
	text = strdup(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
	json_object_put(r);
	return text;
}

char *qmp_rewrite_command(const char *json, int serial, char **reply)
{
	json_object *cmd = json_tokener_parse(json), *exec, *args, *type, *v;
	const char *t;
	char *out;

	*reply = NULL;
	if (!cmd || !json_object_object_get_ex(cmd, "execute", &exec) ||
	    strcmp(json_object_get_string(exec), "object-add") ||
	    !json_object_object_get_ex(cmd, "arguments", &args) ||
	    !json_object_object_get_ex(args, "qom-type", &type)) {
		json_object_put(cmd);
		return strdup(json);
	}
	t = json_object_get_string(type);
	if (strncmp(t, "memory-backend-", 15) || !strcmp(t, MKTME_BACKEND)) {
		json_object_put(cmd);
		return strdup(json);
	}
	if (strcmp(t, "memory-backend-ram") ||
	    json_object_object_get_ex(args, "key", &v)) {
		*reply = error_reply(cmd, "mktme-kvm: an encrypted domain's hotplugged "
				     "memory must be private anonymous memory "
				     "(memory-backend-ram without a key): refused");
		json_object_put(cmd);
		return NULL;
	}
	json_object_object_add(args, "qom-type", json_object_new_string(MKTME_BACKEND));
	json_object_object_add(args, "key", json_object_new_int(serial));
	out = strdup(json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN));
	json_object_put(cmd);
	return out;
}

static int write_all(int fd, const char *buf, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;

	while (len) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = (void *)buf;
		iov.iov_len = len;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if (nfds) {
			struct cmsghdr *c;

			msg.msg_control = u.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		nfds = 0;	/* the descriptors went with the first bytes */
		buf += n;
		len -= n;
	}
	return 0;
}

/* One libvirt connection and its QEMU connection */
struct relay {
	int client, qemu;
	struct json_tokener *tok;
	int fds[MAX_FDS];	/* received from libvirt, not yet passed on */
	int nfds;
	int serial;
	char *pending;		/* libvirt's bytes of the message being parsed */
	size_t plen, pcap;
};

static void close_fds(struct relay *r)
{
	while (r->nfds)
		close(r->fds[--r->nfds]);
}

static int append(struct relay *r, const char *b, size_t n)
{
	if (r->plen + n + 1 > r->pcap) {
		size_t cap = (r->plen + n + 1) * 2;
		char *p = realloc(r->pending, cap);

		if (!p)
			return -1;
		r->pending = p;
		r->pcap = cap;
	}
	memcpy(r->pending + r->plen, b, n);
	r->plen += n;
	r->pending[r->plen] = 0;
	return 0;
}

/* Pass one complete command (pending[0..len)) on, rewritten */
static int pass_command(struct relay *r, size_t len)
{
	char *text, *reply = NULL, save = r->pending[len];
	int ret;

	r->pending[len] = 0;
	text = qmp_rewrite_command(r->pending, r->serial, &reply);
	r->pending[len] = save;
	if (!text) {
		close_fds(r);
		ret = reply ? write_all(r->client, reply, strlen(reply), NULL, 0) ||
			      write_all(r->client, "\r\n", 2, NULL, 0) : -1;
		free(reply);
		return ret;
	}
	ret = write_all(r->qemu, text, strlen(text), r->fds, r->nfds) ||
	      write_all(r->qemu, "\r\n", 2, NULL, 0);
	free(text);
	close_fds(r);	/* QEMU has its own copies now */
	return ret;
}

/* Bytes from libvirt: feed the tokenizer, pass each complete command on */
static int from_client(struct relay *r)
{
	char buf[BUF_SIZE];
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = { 0 };
	struct cmsghdr *c;
	json_object *o;
	ssize_t n;
	size_t i;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	n = recvmsg(r->client, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int), j;
			int *fds = (int *)CMSG_DATA(c);

			for (j = 0; j < k; j++) {
				if (r->nfds < MAX_FDS)
					r->fds[r->nfds++] = fds[j];
				else
					close(fds[j]);
			}
		}
	}
	for (i = 0; i < (size_t)n; i++) {
		/* Whitespace between commands goes through as it is */
		if (r->plen == 0 && (buf[i] == ' ' || buf[i] == '\r' ||
				     buf[i] == '\n' || buf[i] == '\t'))
			continue;
		if (append(r, buf + i, 1))
			return -1;
		o = json_tokener_parse_ex(r->tok, buf + i, 1);
		if (o) {
			json_object_put(o);
			json_tokener_reset(r->tok);
			if (pass_command(r, r->plen))
				return -1;
			r->plen = 0;
		} else if (json_tokener_get_error(r->tok) != json_tokener_continue) {
			/* Not JSON: QEMU answers it as it would */
			json_tokener_reset(r->tok);
			if (write_all(r->qemu, r->pending, r->plen, r->fds, r->nfds))
				return -1;
			close_fds(r);
			r->plen = 0;
		}
	}
	return 0;
}

static int from_qemu(struct relay *r)
{
	char buf[BUF_SIZE];
	ssize_t n = read(r->qemu, buf, sizeof(buf));

	if (n <= 0)
		return -1;
	return write_all(r->client, buf, n, NULL, 0);
}

static int connect_qemu(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, i;

	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	strcpy(a.sun_path, path);
	/* QEMU listens once it has started: retry for a while */
	for (i = 0; i < 600; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return fd;
		close(fd);
		if (errno != ENOENT && errno != ECONNREFUSED)
			return -1;
		usleep(100000);
	}
	return -1;
}

/* Relay one libvirt connection; 0 when libvirt left, -1 when QEMU did */
static int relay_one(int client, const char *qemu_path, int serial)
{
	struct relay r = { .client = client, .serial = serial };
	struct pollfd p[2];
	int ret = 0;

	r.qemu = connect_qemu(qemu_path);
	if (r.qemu < 0)
		return -1;
	r.tok = json_tokener_new();
	if (!r.tok) {
		close(r.qemu);
		return -1;
	}
	for (;;) {
		p[0] = (struct pollfd){ .fd = client, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = r.qemu, .events = POLLIN };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -1;
			break;
		}
		if (p[1].revents && from_qemu(&r)) {
			ret = -1;	/* QEMU is gone */
			break;
		}
		if (p[0].revents && from_client(&r))
			break;		/* libvirt left (a restart): wait for the next */
	}
	close_fds(&r);
	json_tokener_free(r.tok);
	free(r.pending);
	close(r.qemu);
	return ret;
}

int qmp_proxy_serve(int listen_fd, const char *qemu_path, int serial,
		    struct mkerr *e)
{
	int client;

	for (;;) {
		client = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (client < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return mkerr_set(e, "accept on libvirt's monitor socket: %s",
					 strerror(errno));
		}
		if (relay_one(client, qemu_path, serial)) {
			close(client);
			return 0;
		}
		close(client);
	}
}
