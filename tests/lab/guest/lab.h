/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest side of the mktme-kvm lab: TAP output, the lab channel to the
 * emulator's monitor (see ../lab.py), and the mktme_lab test driver.
 */
#ifndef MKTME_LAB_H
#define MKTME_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "../module/mktme_lab_uapi.h"

/* TAP */
void tap_begin(void);
int tap_end(void);		/* prints the plan; returns the exit status */
bool tap_ok(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tap_skip(const char *why, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lab channel: each returns a new reference to "return", or NULL */
json_object *lab_qmp(const char *execute, json_object *args);
json_object *lab_qmp_args(const char *execute, const char *args_json);
char *lab_hmp(const char *cmdline);
int lab_physread(uint64_t pa, void *buf, size_t len);
int lab_wakeup_after(double seconds);
/* A counter of query-mktme-checker, UINT64_MAX if unavailable */
uint64_t lab_checker_count(const char *field);

/* Write @s to a sysfs/procfs file: 0 or -errno */
int lab_write_file(const char *path, const char *s);

/*
 * In a query-mktme reply: is keyid programmed with command and algorithm
 * on package socket, or on every package if socket is -1?
 */
bool lab_key_table_has(json_object *info, int socket, int keyid,
		       const char *command, const char *algorithm);
int lab_xts(const uint8_t *key, size_t key_len, uint64_t tweak,
	    const uint8_t *in, uint8_t *out, size_t len, bool decrypt);

/* Test driver */
extern int lab_fd;
extern struct mktme_lab_info lab_info;
int lab_open(void);
int lab_pconfig(struct mktme_lab_pconfig *p);
int lab_msr_read(unsigned int cpu, uint32_t index, uint64_t *value);
int lab_msr_write(unsigned int cpu, uint32_t index, uint64_t value);
uint64_t lab_alloc(void);
uint64_t lab_alloc_node(int node);
void lab_free(uint64_t phys);
int lab_mem(struct mktme_lab_mem *m);
int lab_read(uint64_t phys, unsigned int keyid, unsigned int cpu,
	     unsigned int offset, void *buf, unsigned int len);
int lab_write(uint64_t phys, unsigned int keyid, unsigned int cpu,
	      unsigned int offset, const void *buf, unsigned int len);
int lab_clflush(uint64_t phys, unsigned int keyid, unsigned int cpu,
		unsigned int offset, unsigned int len);

/* PCONFIG KEY_PROGRAM_STRUCT */
enum { KEYID_SET_KEY_DIRECT, KEYID_SET_KEY_RANDOM, KEYID_CLEAR_KEY,
       KEYID_NO_ENCRYPT };
enum { PROG_SUCCESS, INVALID_PROG_CMD, ENTROPY_ERROR, INVALID_KEYID,
       INVALID_ENC_ALG, DEVICE_BUSY };
#define ENC_ALG_AES_XTS_128	(1u << 8)
#define ENC_ALG_AES_XTS_256	(1u << 10)

void key_program(struct mktme_lab_pconfig *p, unsigned int cpu,
		 uint16_t keyid, uint8_t cmd, uint32_t enc_alg,
		 const uint8_t *data_key, const uint8_t *tweak_key,
		 size_t key_len);
/* Program keyid on cpu; returns the status, or -1 if PCONFIG faulted */
int program(unsigned int cpu, uint16_t keyid, uint8_t cmd, uint32_t enc_alg,
	    const uint8_t *data_key, const uint8_t *tweak_key, size_t key_len);

#endif
