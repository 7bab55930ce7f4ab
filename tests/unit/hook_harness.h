/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The harness of the tests that run the hook and the QEMU wrapper as
 * libvirtd runs them (test_hook.c, test_hook_crash.c): a private state
 * directory and keyring, "user" keys standing in for "mktme" keys, the
 * programs run with arguments and the domain XML on stdin.
 * The binaries are build/unit/mktme-kvm-hook and build/unit/qemu-wrapper
 * (ASan/UBSan builds), or $HOOK and $WRAPPER.
 */
#ifndef HOOK_HARNESS_H
#define HOOK_HARNESS_H

#include <keyutils.h>
#include <stdbool.h>

#include "../../libvirt-hook/hook_state.h"
#include "unit_helpers.h"

#define NS "https://mktme-kvm.org/schemas/domain/1.0"
#define UUID1 "0b8f1e4c-1111-2222-3333-000000000001"
#define UUID2 "0b8f1e4c-1111-2222-3333-000000000002"
#define UUID3 "0b8f1e4c-1111-2222-3333-000000000003"
/*
 * Domains with a stand-in QEMU running: Criterion runs tests in parallel,
 * and the hook looks for QEMUs in all of /proc, so each test that starts
 * one uses a UUID of its own
 */
#define UUIDQ1 "0b8f1e4c-1111-2222-3333-0000000000f1"
#define UUIDQ2 "0b8f1e4c-1111-2222-3333-0000000000f2"
#define UUIDQ3 "0b8f1e4c-1111-2222-3333-0000000000f3"

extern char dir[], state_dir[], ring_name[], wrapper_path[];
/* stdout and stderr of the last program run */
extern char out[16384];

void setup(void);
void teardown(void);

/* Run PROG with ARGV, XML on stdin; stdout+stderr in out; exit status
 * (128 + signal when killed) */
int run(const char *prog, char *const argv[], const char *xml);

/* The hook: NAME OP SUB - < XML; its exit status */
int hook(const char *name, const char *op, const char *sub, const char *xml);

/* The same, from a process of its own, as a restarted libvirtd would run it
 * (the hook tells libvirtd instances apart by its parent) */
int hook_other_daemon(const char *name, const char *op, const char *sub,
		      const char *xml);

/* Domain XML in one of 4 slots: NAME, UUID, the attribute's ATTRS (NULL:
 * unmarked), emulator (NULL: the wrapper) */
const char *dom(int slot, const char *name, const char *uuid,
		const char *attrs, const char *emulator);

void load(struct state *s);
/* The key DESC in the test's keyring, or -1 */
key_serial_t ring_key(const char *desc);
/* Is K a live key? */
int alive(key_serial_t k);
/* A stand-in for a domain's QEMU: a process with "-uuid UUID" */
pid_t fake_qemu(const char *uuid);
void stop(pid_t pid);

#endif
