/* SPDX-License-Identifier: GPL-2.0 */
/*
 * QEMU's command line as libvirt 11.3 builds it, rewritten so that all
 * guest RAM comes from memory-backend-mktme: each
 *   -object {"qom-type":"memory-backend-ram","id":ID,"size":N,...}
 * (the machine's pc.ram, NUMA cells' ram-nodeN, cold-plugged DIMMs'
 * memdimmN, virtio-mem's memvirtiomemN) becomes
 *   -object memory-backend-mktme,id=ID,size=N,...,key=SERIAL
 * with every other property kept.  Anything that would give the guest
 * RAM the rewrite cannot key makes it fail (fail closed): file or memfd
 * backends, legacy "-numa node,mem=", no RAM backend at all.
 */
#ifndef QEMU_ARGV_H
#define QEMU_ARGV_H

#include "mkerr.h"

#define MKTME_BACKEND	"memory-backend-mktme"

/* The value of "-uuid" in ARGV, or NULL (a capability probe, not a domain) */
const char *qemu_argv_uuid(int argc, char **argv);

/*
 * A new argv (NULL-terminated; free with qemu_argv_free) with every RAM
 * backend keyed by SERIAL; *rewritten counts them.  NULL with e set when
 * the command line has RAM that cannot be keyed.
 */
char **qemu_argv_rewrite(int argc, char **argv, int serial, int *rewritten,
			 struct mkerr *e);

void qemu_argv_free(char **argv);

/* Does the guest have memory hotplug slots ("-m ...,maxmem=")? */
int qemu_argv_hotplug(int argc, char **argv);

/*
 * The QMP monitor's "-chardev socket,..." (the one "-mon ...,mode=control"
 * names): its index in ARGV, with its path= or fd= (the other "" or -1).
 * -1 with e set if there is none or it is not a UNIX socket server.
 */
int qemu_argv_monitor(int argc, char **argv, char *path, size_t len, int *fd,
		      struct mkerr *e);

/* The value of KEY in QEMU's "a,key=value,..." option syntax (",," is a
 * comma) into buf; 0, or -1 if absent or too long */
int qemu_opt_value(const char *opts, const char *key, char *buf, size_t len);

/* One -object JSON object as QEMU's dotted key=value form (malloc'd) */
char *qemu_object_keyval(const char *json, const char *new_type, int serial,
			 struct mkerr *e);

#endif
