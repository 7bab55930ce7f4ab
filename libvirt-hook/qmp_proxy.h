/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The QEMU wrapper's monitor relay, for domains with memory hotplug: libvirt
 * creates a hotplugged DIMM's backend with QMP "object-add", which never
 * appears on QEMU's command line.  The relay sits between libvirt and
 * QEMU's QMP socket: each libvirt connection gets a connection of its own
 * to QEMU; libvirt's commands are parsed (json-c) and "object-add" of a
 * memory-backend-ram becomes memory-backend-mktme with the domain's key,
 * while any other memory backend is refused with a QMP error (fail
 * closed).  Bytes from QEMU, and file descriptors libvirt passes
 * (SCM_RIGHTS), go through unchanged.
 */
#ifndef QMP_PROXY_H
#define QMP_PROXY_H

#include "mkerr.h"

/*
 * One QMP command from libvirt.  Returns the text to send to QEMU
 * (malloc'd; the command itself when nothing changes), or NULL with *reply
 * set to the QMP error reply (malloc'd) to send back to libvirt instead.
 */
char *qmp_rewrite_command(const char *json, int serial, char **reply);

/*
 * Relay between the clients accepted on LISTEN_FD (libvirt) and QEMU's
 * monitor at the UNIX socket QEMU_PATH, until QEMU's socket is gone.
 * Returns 0 when QEMU went away, -1 with e set on an error.
 */
int qmp_proxy_serve(int listen_fd, const char *qemu_path, int serial,
		    struct mkerr *e);

#endif
