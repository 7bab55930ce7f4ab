/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the keyed-memory lab programs (keyed*.c): see keyed_lib.c.
 */
#ifndef KEYED_LIB_H
#define KEYED_LIB_H

#include <keyutils.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "lab.h"

#define NR_encrypt_mprotect	463
#define PAGE			4096UL
#define MiB			(1024UL * 1024)
#define RW			(PROT_READ | PROT_WRITE)
#define SYSFS			"/sys/kernel/mm/mktme/"
#define THP			"/sys/kernel/mm/transparent_hugepage/"
#define COMPACT			"/proc/sys/vm/compact_memory"
#define RAMDISK			"/dev/ram0"

#define WAIT_STEPS		1000		/* of 10 ms, in wait_*() */

/* encrypt_mprotect(2); serial 0 is no key (KeyID 0) */
long sys_encrypt_mprotect(void *addr, size_t len, unsigned long prot,
			  key_serial_t serial, unsigned long flags);
long encrypt_mprotect(void *addr, size_t len, unsigned long prot,
		      key_serial_t serial);

/* A VMA as /proc/PID/smaps shows it */
struct vma {
	uintptr_t start, end;
	char perms[5];
	int keyid;		/* -1 without a KeyID line */
	int keyid_lines;
	long rss, swap, anon_huge;	/* kB */
	bool mergeable;		/* "mg" in VmFlags */
};

const char *ename(int e);
char *read_text(const char *path);
/* A field of /proc/meminfo or /proc/self/status in kB, -1 if absent */
long meminfo_kb(const char *name);
long status_kb(const char *name);
long read_long(const char *path);
uint64_t pattern(uint64_t seed, size_t word);
void fill(void *p, size_t len, uint64_t seed);
bool holds_at(const void *base, size_t off, size_t len, uint64_t seed);
bool holds(const void *p, size_t len, uint64_t seed);
bool is_zero(const void *p, size_t len);
char *map_anon_aligned(size_t len, size_t align);
char *map_anon(size_t len);
void unmap(void *p, size_t len);
char *map_keyed(size_t len, key_serial_t key);
int smaps_read(pid_t pid, struct vma **out);
bool vma_of(pid_t pid, const void *addr, struct vma *out);
bool vma_at(const void *addr, struct vma *out);
int keyid_at(const void *addr);
int vmas_in(const void *p, size_t len);
void keyed_totals(int keyid, int *vmas, long *pages);
uint64_t pfn_of(const void *addr);
void drain_lru(void);
bool write_or_fail(const char *path, const char *s);
char *proc_keys_line(key_serial_t key);
int key_field(key_serial_t key, const char *field);
int users(key_serial_t key);
int wait_users(key_serial_t key, int want);
bool users_are(key_serial_t key, int want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int users_expected(int keyid);
key_serial_t add_mktme(const char *desc, const char *payload);
bool wait_in_use(long want);
bool checker_set(bool on, bool reset);

#endif
