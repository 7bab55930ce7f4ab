// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of libvirt-hook/qmp_proxy.c, the QEMU wrapper's monitor relay
 * for memory hotplug: the command rewrite, and the relay between a
 * stand-in libvirt and a stand-in QEMU (greeting, rewritten object-add,
 * refused backends, file descriptors passed through, reconnection, exit
 * when QEMU goes), plus the wrapper's command-line helpers it needs.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../libvirt-hook/qemu_argv.h"
#include "../../libvirt-hook/qmp_proxy.h"

Test(qmp_rewrite, hotplugged_ram_is_keyed)
{
	char *reply, *out = qmp_rewrite_command(
		"{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":"
		"\"memory-backend-ram\",\"id\":\"memdimm1\",\"size\":134217728},"
		"\"id\":\"libvirt-42\"}", 99, &reply);

	cr_assert_not_null(out);
	cr_expect_null(reply);
	cr_expect(strstr(out, "\"qom-type\":\"memory-backend-mktme\""), "%s", out);
	cr_expect(strstr(out, "\"key\":99"), "%s", out);
	cr_expect(strstr(out, "\"id\":\"libvirt-42\""), "%s", out);
	free(out);
}

Test(qmp_rewrite, other_commands_untouched)
{
	static const char *same[] = {
		"{\"execute\":\"qmp_capabilities\"}",
		"{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"secret\",\"id\":\"s\"}}",
		"{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"pc-dimm\"}}",
		"not json",
	};
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		char *reply, *out = qmp_rewrite_command(same[i], 1, &reply);

		cr_assert_not_null(out);
		cr_expect_str_eq(out, same[i]);
		free(out);
	}
}

Test(qmp_rewrite, unkeyable_backends_refused)
{
	static const char *bad[] = {
		"{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":"
		"\"memory-backend-memfd\",\"id\":\"m\",\"size\":1},\"id\":\"x-1\"}",
		"{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":"
		"\"memory-backend-file\",\"id\":\"m\",\"size\":1,\"mem-path\":\"/f\"},\"id\":\"x-1\"}",
		"{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":"
		"\"memory-backend-ram\",\"id\":\"m\",\"size\":1,\"key\":5},\"id\":\"x-1\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *reply, *out = qmp_rewrite_command(bad[i], 1, &reply);

		cr_expect_null(out);
		cr_assert_not_null(reply);
		cr_expect(strstr(reply, "\"error\""), "%s", reply);
		cr_expect(strstr(reply, "\"id\":\"x-1\""), "%s", reply);
		cr_expect(strstr(reply, "mktme-kvm"), "%s", reply);
		free(reply);
	}
}

Test(qemu_opts, values_and_monitor)
{
	char v[64], path[256];
	int fd;
	struct mkerr e;
	char *argv[] = { "qemu", "-m", "size=131072k,slots=2,maxmem=524288k",
		"-chardev", "socket,id=charmonitor,path=/var/lib/libvirt/qemu/domain-1-a,,b/monitor.sock,server=on,wait=off",
		"-mon", "chardev=charmonitor,id=monitor,mode=control" };
	char *byfd[] = { "qemu", "-chardev", "socket,id=charmonitor,fd=35,server=on,wait=off",
		"-mon", "chardev=charmonitor,id=monitor,mode=control" };
	char *none[] = { "qemu", "-m", "512" };

	cr_expect_eq(qemu_opt_value("a,b=1,,2,c=3", "b", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "1,2");
	cr_expect_eq(qemu_opt_value("a,b=1,c=3", "c", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "3");
	cr_expect_eq(qemu_opt_value("a,bb=1", "b", v, sizeof(v)), -1);
	cr_expect(qemu_argv_hotplug(7, argv));
	cr_expect(!qemu_argv_hotplug(3, none));
	cr_expect_eq(qemu_argv_monitor(7, argv, path, sizeof(path), &fd, &e), 4, "%s", e.msg);
	cr_expect_str_eq(path, "/var/lib/libvirt/qemu/domain-1-a,b/monitor.sock");
	cr_expect_eq(fd, -1);
	cr_expect_eq(qemu_argv_monitor(5, byfd, path, sizeof(path), &fd, &e), 2, "%s", e.msg);
	cr_expect_eq(fd, 35);
	cr_expect_eq(qemu_argv_monitor(3, none, path, sizeof(path), &fd, &e), -1);
	cr_expect(strstr(e.msg, "no QMP monitor"), "%s", e.msg);
}

/* The relay between a stand-in libvirt and a stand-in QEMU */
static char dir[] = "/tmp/mktme-qmp-test-XXXXXX";
static char lpath[300], qpath[300];

static int listen_on(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(a.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(a.sun_path, path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void say(int fd, const char *s)
{
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Read until BUF holds a line with "\n"; returns it (static) */
static const char *hear(int fd)
{
	static char buf[4096];
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, 1)) == 1)
		if (buf[n++] == '\n')
			break;
	buf[n] = 0;
	return buf;
}

Test(qmp_proxy, relays_rewrites_passes_fds_and_reconnects)
{
	int lfd, qlisten, lib, qemu, pipefd[2], got = -1, status;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { 0 };
	struct iovec iov;
	struct cmsghdr *c;
	char data[256];
	pid_t relay;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(lpath, sizeof(lpath), "%s/monitor.sock", dir);
	snprintf(qpath, sizeof(qpath), "%s/qemu.sock", dir);
	lfd = listen_on(lpath);
	qlisten = listen_on(qpath);
	relay = fork();
	if (relay == 0) {
		struct mkerr e;

		close(qlisten);
		_exit(qmp_proxy_serve(lfd, qpath, 1234, &e) ? 1 : 0);
	}
	close(lfd);

	/* libvirt connects; the relay connects to QEMU, which greets */
	lib = connect_to(lpath);
	qemu = accept(qlisten, NULL, NULL);
	cr_assert_geq(qemu, 0);
	say(qemu, "{\"QMP\": {\"version\": {}}}\r\n");
	cr_expect(strstr(hear(lib), "\"QMP\""));
	say(lib, "{\"execute\":\"qmp_capabilities\",\"id\":\"libvirt-1\"}\r\n");
	cr_expect_str_eq(hear(qemu), "{\"execute\":\"qmp_capabilities\",\"id\":\"libvirt-1\"}\r\n");
	/* A DIMM's backend, split across two writes */
	say(lib, "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"memory-");
	say(lib, "backend-ram\",\"id\":\"memdimm1\",\"size\":1048576},\"id\":\"libvirt-2\"}\r\n");
	cr_expect(strstr(hear(qemu), "\"qom-type\":\"memory-backend-mktme\",\"id\":\"memdimm1\","
			 "\"size\":1048576,\"key\":1234"), "rewritten");
	/* A memfd backend never reaches QEMU: libvirt gets an error */
	say(lib, "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"memory-backend-memfd\","
	    "\"id\":\"m\",\"size\":1},\"id\":\"libvirt-3\"}\r\n");
	cr_expect(strstr(hear(lib), "\"error\""));
	/* A file descriptor passed with getfd goes through */
	cr_assert_eq(pipe(pipefd), 0);
	snprintf(data, sizeof(data), "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"f\"}}\r\n");
	iov = (struct iovec){ data, strlen(data) };
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pipefd[1], sizeof(int));
	cr_assert_eq(sendmsg(lib, &msg, 0), (ssize_t)strlen(data));
	memset(&msg, 0, sizeof(msg));
	iov = (struct iovec){ data, sizeof(data) };
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	cr_assert_gt(recvmsg(qemu, &msg, 0), 0);
	c = CMSG_FIRSTHDR(&msg);
	cr_assert_not_null(c, "no descriptor came with getfd");
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	cr_expect_eq(write(got, "x", 1), 1);
	cr_expect_eq(read(pipefd[0], data, 1), 1, "the descriptor is the same pipe");
	/* libvirtd restarts: QEMU sees its connection close, then a new one */
	close(lib);
	while (read(qemu, data, sizeof(data)) > 0)
		;	/* the rest of getfd's line, then EOF */
	close(qemu);
	lib = connect_to(lpath);
	qemu = accept(qlisten, NULL, NULL);
	cr_assert_geq(qemu, 0);
	say(lib, "{\"execute\":\"qmp_capabilities\"}\r\n");
	cr_expect(strstr(hear(qemu), "qmp_capabilities"));
	/* QEMU goes away: the relay ends */
	close(qemu);
	close(qlisten);
	unlink(qpath);
	cr_expect_eq(read(lib, data, 1), 0, "libvirt sees EOF, as from QEMU");
	waitpid(relay, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(lib);
	unlink(lpath);
	rmdir(dir);
}
