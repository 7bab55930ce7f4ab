// SPDX-License-Identifier: GPL-2.0
/*
 * Conformance suite of the emulated TME-MK platform, run inside the guest.
 *
 * Checks what the platform must do as the SDM says: enumeration, the TME
 * MSRs, every PCONFIG command and error, KeyID aliases of memory through
 * real AES-XTS (against an independent AES-XTS on the host), per-package
 * key tables, injected transient errors, and the alias-coherency checker.
 * On a CPU without TME-MK it checks that nothing of it is there.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab.h"
#include "svm.h"

#define MSR_MKTME_KEYID_PARTITIONING	0x87
#define MSR_TME_CAPABILITY		0x981
#define MSR_TME_ACTIVATE		0x982
#define MSR_TME_EXCLUDE_MASK		0x983
#define MSR_TME_EXCLUDE_BASE		0x984

#define PAGE	4096
#define TRAP_UD	6
#define TRAP_GP	13

static const char msg[] = "mktme-kvm: a message only KeyID k can read back";
static unsigned int nr_cpus;

static const uint8_t key_a[32] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
	0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
};
static const uint8_t tweak_a[32] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
	0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
	0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
};
static const uint8_t key_b[16] = { 0x5a, [15] = 0xa5 };
static const uint8_t tweak_b[16] = { 0x3c, [15] = 0xc3 };

/* User-mode PCONFIG: which signal does it raise? */

static sigjmp_buf sig_env;

static void on_signal(int sig)
{
	siglongjmp(sig_env, sig);
}

static int user_pconfig_signal(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	static uint8_t st[256] __attribute__((aligned(256)));
	int sig;

	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sig = sigsetjmp(sig_env, 1);
	if (!sig) {
		asm volatile(".byte 0x0f, 0x01, 0xc5"
			     : : "a" (0), "b" (st) : "memory", "cc");
		sig = 0;
	}
	signal(SIGILL, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	return sig;
}

static bool dmesg_has(const char *needle)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf;
	bool found;

	if (len <= 0)
		return false;
	buf = calloc(1, len + 1);
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	found = len > 0 && strstr(buf, needle);
	free(buf);
	return found;
}

static bool cpu_is_intel(void)
{
	unsigned int a, b, c, d;

	__cpuid(0, a, b, c, d);
	return b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;
}

/* A CPU without TME-MK */

static void test_absent(void)
{
	struct mktme_lab_pconfig p;
	uint64_t v;

	tap_ok(!lab_info.tme && !lab_info.pconfig,
	       "absent: CPUID reports neither TME nor PCONFIG");
	int r;

	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	r = lab_pconfig(&p);
	tap_ok(r == 0 && p.faulted && p.trapnr == TRAP_UD,
	       "absent: PCONFIG at CPL0 raises #UD (vector %u)", p.trapnr);
	tap_ok(user_pconfig_signal() == SIGILL,
	       "absent: PCONFIG at CPL3 raises #UD (SIGILL)");
	tap_ok(lab_msr_read(0, MSR_TME_ACTIVATE, &v) == -EIO,
	       "absent: RDMSR IA32_TME_ACTIVATE raises #GP");
}

/* Enumeration and MSRs */

static void test_enumeration(void)
{
	unsigned int a, b, c, d;
	uint64_t cap = 0, act = 0, v;
	int r;
	static const uint32_t ro_msrs[] = {
		MSR_MKTME_KEYID_PARTITIONING, MSR_TME_CAPABILITY,
		MSR_TME_ACTIVATE, MSR_TME_EXCLUDE_MASK, MSR_TME_EXCLUDE_BASE,
	};
	size_t i;

	tap_ok(lab_info.tme, "CPUID.7.0:ECX[13] (TME) is set");
	tap_ok(lab_info.pconfig, "CPUID.7.0:EDX[18] (PCONFIG) is set");
	__cpuid_count(0x1b, 0, a, b, c, d);
	tap_ok((a & 0xfff) == 1 && b == 1 && c == 0 && d == 0,
	       "CPUID.1BH.0: sub-leaf type 1, target MKTME (eax %#x ebx %#x)",
	       a, b);
	__cpuid_count(0x1b, 1, a, b, c, d);
	tap_ok((a & 0xfff) == 0, "CPUID.1BH.1 is invalid (end of targets)");
	tap_ok(lab_info.maxphyaddr == 46,
	       "CPUID.80000008H reports MAXPHYADDR 46 (%u)",
	       lab_info.maxphyaddr);

	r = lab_msr_read(0, MSR_TME_CAPABILITY, &cap);
	tap_ok(r == 0 && (cap & 1) && (cap & 4) && ((cap >> 32) & 0xf) == 6 &&
	       ((cap >> 36) & 0x7fff) == 63,
	       "IA32_TME_CAPABILITY: AES-XTS-128/256, 6 KeyID bits, 63 keys "
	       "(%#llx)", (unsigned long long)cap);
	r = lab_msr_read(0, MSR_TME_ACTIVATE, &act);
	tap_ok(r == 0 && (act & 3) == 3 && ((act >> 32) & 0xf) == 6 &&
	       ((act >> 48) & 0xffff) == 5,
	       "IA32_TME_ACTIVATE: locked, enabled, 6 KeyID bits, "
	       "AES-XTS-128/256 allowed (%#llx)", (unsigned long long)act);
	tap_ok(lab_msr_read(0, MSR_MKTME_KEYID_PARTITIONING, &v) == 0 &&
	       v == 63, "IA32_MKTME_KEYID_PARTITIONING: 63 MKTME KeyIDs");
	tap_ok(lab_msr_read(0, MSR_TME_EXCLUDE_MASK, &v) == 0 && v == 0,
	       "IA32_TME_EXCLUDE_MASK reads 0 (no exclusion range)");
	for (i = 0; i < sizeof(ro_msrs) / sizeof(ro_msrs[0]); i++)
		tap_ok(lab_msr_write(0, ro_msrs[i], 0) == -EIO,
		       "WRMSR %#x (locked) raises #GP", ro_msrs[i]);
	tap_ok(lab_info.keyid_shift == 40, "KeyID bits start at bit 40");

	if (cpu_is_intel()) {
		tap_ok(dmesg_has("x86_phys_bits reduced by 6"),
		       "Linux enumerated TME-MK (dmesg: x86_phys_bits "
		       "reduced by 6)");
		tap_ok(lab_info.kernel_phys_bits == 40,
		       "the kernel's physical address width excludes the "
		       "KeyID bits (%u)", lab_info.kernel_phys_bits);
	} else {
		tap_skip("Linux 6.12 detects TME on Intel CPUs only",
			 "Linux enumerated TME-MK (dmesg)");
		tap_skip("Linux 6.12 detects TME on Intel CPUs only",
			 "the kernel's physical address width");
		__cpuid(0x80000001, a, b, c, d);
		tap_ok(c & (1u << 2), "the AMD model has SVM, for nested KVM");
	}
}

/* PCONFIG faults and status codes */

static void expect_gp(struct mktme_lab_pconfig *p, const char *what)
{
	int r = lab_pconfig(p);

	tap_ok(r == 0 && p->faulted && p->trapnr == TRAP_GP,
	       "PCONFIG %s raises #GP(0) (faulted %u vector %u)", what,
	       p->faulted, p->trapnr);
}

static void expect_status(struct mktme_lab_pconfig *p, int status,
			  const char *what)
{
	int r = lab_pconfig(p);

	tap_ok(r == 0 && !p->faulted && (int)p->status == status &&
	       p->zf == !!status,
	       "PCONFIG %s: EAX %d, ZF %d (got EAX %u ZF %u)", what, status,
	       !!status, p->status, p->zf);
}

static void test_pconfig_errors(void)
{
	struct mktme_lab_pconfig p;
	uint32_t ctrl;

	tap_ok(user_pconfig_signal() == SIGSEGV,
	       "PCONFIG at CPL3 raises #GP (SIGSEGV)");

	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	p.misalign = 64;
	expect_gp(&p, "with a structure not 256-byte aligned");

	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	p.leaf = 1;
	expect_gp(&p, "with an unsupported leaf (EAX 1)");

	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	ctrl = KEYID_SET_KEY_RANDOM | ENC_ALG_AES_XTS_128 | (1u << 24);
	memcpy(p.st + 2, &ctrl, 4);
	expect_gp(&p, "with reserved KEYID_CTRL bits 31:24 set");

	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	p.st[40] = 1;
	expect_gp(&p, "with reserved bytes 6-63 not zero");

	key_program(&p, 0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128,
		    key_a, tweak_a, 32);
	expect_gp(&p, "with AES-XTS-128 key bytes 16-63 not zero");

	key_program(&p, 0, 1, 4, ENC_ALG_AES_XTS_128, NULL, NULL, 16);
	expect_status(&p, INVALID_PROG_CMD, "command 4");
	key_program(&p, 0, 0, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	expect_status(&p, INVALID_KEYID, "KeyID 0");
	key_program(&p, 0, 64, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	expect_status(&p, INVALID_KEYID, "KeyID 64 (beyond 63)");
	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM, 0, NULL, NULL, 16);
	expect_status(&p, INVALID_ENC_ALG, "with no ENC_ALG bit");
	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM,
		    ENC_ALG_AES_XTS_128 | ENC_ALG_AES_XTS_256, NULL, NULL, 16);
	expect_status(&p, INVALID_ENC_ALG, "with two ENC_ALG bits");
	key_program(&p, 0, 1, KEYID_SET_KEY_RANDOM, 1u << 9, NULL, NULL, 16);
	expect_status(&p, INVALID_ENC_ALG,
		      "with AES-XTS-128 with integrity (not allowed)");
	key_program(&p, 0, 1, KEYID_CLEAR_KEY, 1u << 11, NULL, NULL, 16);
	expect_status(&p, INVALID_ENC_ALG,
		      "CLEAR_KEY with a disallowed ENC_ALG");
}

/* Memory through KeyIDs */

static bool read_is(uint64_t pa, unsigned int keyid, unsigned int cpu,
		    const void *want, size_t len)
{
	uint8_t got[PAGE];

	return lab_read(pa, keyid, cpu, 0, got, len) == 0 &&
	       memcmp(got, want, len) == 0;
}

static uint64_t keyed(uint64_t pa, unsigned int keyid)
{
	return pa | (uint64_t)keyid << lab_info.keyid_shift;
}

static bool read_is_at(uint64_t pa, unsigned int keyid, unsigned int offset,
		       const void *want, size_t len)
{
	uint8_t got[PAGE];

	return lab_read(pa, keyid, 0, offset, got, len) == 0 &&
	       memcmp(got, want, len) == 0;
}

static void test_round_trip(unsigned int keyid, uint32_t alg,
			    const uint8_t *key, const uint8_t *tweak,
			    size_t len, const char *name)
{
	uint64_t pa = lab_alloc();
	uint8_t xts_key[64], ct[sizeof(msg)], ref[48], pm[48];

	tap_ok(program(0, keyid, KEYID_SET_KEY_DIRECT, alg, key, tweak,
		       len) == PROG_SUCCESS,
	       "%s: SET_KEY_DIRECT KeyID %u succeeds", name, keyid);
	tap_ok(lab_write(pa, keyid, 0, 0, msg, sizeof(msg)) == 0 &&
	       read_is(pa, keyid, 0, msg, sizeof(msg)),
	       "%s: what is written through KeyID %u reads back through it",
	       name, keyid);
	tap_ok(lab_read(pa, 0, 0, 0, ct, sizeof(ct)) == 0 &&
	       memcmp(ct, msg, sizeof(msg)) != 0,
	       "%s: KeyID 0 reads ciphertext", name);

	/* The first 48 bytes are three AES-XTS blocks, tweak = their PA */
	memcpy(xts_key, key, len);
	memcpy(xts_key + len, tweak, len);
	bool same = true;

	for (int blk = 0; blk < 3; blk++) {
		if (lab_xts(xts_key, 2 * len, pa + 16 * blk,
			    (const uint8_t *)msg + 16 * blk, ref + 16 * blk,
			    16, false) < 0)
			same = false;
	}
	tap_ok(same && memcmp(ref, ct, 48) == 0,
	       "%s: the ciphertext is AES-XTS of the message under the key, "
	       "tweak = physical address", name);
	tap_ok(lab_physread(pa, pm, 48) == 0 && memcmp(pm, ct, 48) == 0,
	       "%s: the emulator's monitor reads the same ciphertext at KeyID 0",
	       name);
	tap_ok(lab_physread(keyed(pa, keyid), pm, 48) == 0 &&
	       memcmp(pm, msg, 48) == 0,
	       "%s: and the message at the KeyID %u alias", name, keyid);
	lab_free(pa);
}

static void test_commands(void)
{
	uint64_t pa = lab_alloc();
	uint8_t buf[sizeof(msg)];

	test_round_trip(1, ENC_ALG_AES_XTS_256, key_a, tweak_a, 32,
			"AES-XTS-256");
	test_round_trip(2, ENC_ALG_AES_XTS_128, key_b, tweak_b, 16,
			"AES-XTS-128");

	tap_ok(program(0, 3, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		       NULL, NULL, 16) == PROG_SUCCESS,
	       "SET_KEY_RANDOM KeyID 3 succeeds");
	tap_ok(lab_write(pa, 3, 0, 0, msg, sizeof(msg)) == 0 &&
	       read_is(pa, 3, 0, msg, sizeof(msg)),
	       "SET_KEY_RANDOM: round trip through KeyID 3");
	tap_ok(lab_read(pa, 0, 0, 0, buf, sizeof(buf)) == 0 &&
	       memcmp(buf, msg, sizeof(msg)),
	       "SET_KEY_RANDOM: KeyID 0 reads ciphertext");
	tap_ok(lab_read(pa, 1, 0, 0, buf, sizeof(buf)) == 0 &&
	       memcmp(buf, msg, sizeof(msg)),
	       "cross-key: KeyID 1 reads KeyID 3's data as garbage");
	tap_ok(lab_read(pa, 9, 0, 0, buf, sizeof(buf)) == 0 &&
	       memcmp(buf, msg, sizeof(msg)),
	       "cross-key: never-programmed KeyID 9 (TME key) reads garbage");

	tap_ok(program(0, 3, KEYID_CLEAR_KEY, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == PROG_SUCCESS,
	       "CLEAR_KEY KeyID 3 succeeds");
	tap_ok(lab_write(pa, 3, 0, 0, msg, sizeof(msg)) == 0 &&
	       read_is(pa, 0, 0, msg, sizeof(msg)),
	       "CLEAR_KEY: KeyID 3 now uses the KeyID-0 (TME) key");
	tap_ok(program(0, 4, KEYID_NO_ENCRYPT, ENC_ALG_AES_XTS_256, NULL,
		       NULL, 32) == PROG_SUCCESS,
	       "NO_ENCRYPT KeyID 4 succeeds");
	memset(buf, 0, sizeof(buf));
	tap_ok(lab_write(pa, 4, 0, 0, msg, sizeof(msg)) == 0 &&
	       read_is(pa, 0, 0, msg, sizeof(msg)) &&
	       read_is(pa, 4, 0, msg, sizeof(msg)),
	       "NO_ENCRYPT: KeyID 4 stores plaintext");
	lab_free(pa);
}

static void test_access_kinds(void)
{
	/* endbr64; mov $0x1234abcd, %eax; ret */
	static const uint8_t code[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0xcd,
					0xab, 0x34, 0x12, 0xc3 };
	uint64_t pa = lab_alloc();
	struct mktme_lab_mem m = { .phys = pa, .keyid = 1 };
	static const uint8_t zero[PAGE];
	uint8_t buf[32];
	uint8_t *user;

	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);
	/* The page was zeroed through KeyID 0: zero it through KeyID 1 */
	lab_write(pa, 1, 0, 0, zero, sizeof(zero));

	m.op = MKTME_LAB_WRITE64;
	m.offset = 12;		/* crosses the AES block at 16 */
	m.value = 0x1122334455667788ull;
	lab_mem(&m);
	m.op = MKTME_LAB_READ64;
	m.value = 0;
	tap_ok(lab_mem(&m) == 0 && m.value == 0x1122334455667788ull,
	       "unaligned 8-byte store and load across AES blocks");
	tap_ok(lab_read(pa, 1, 0, 0, buf, 32) == 0 && buf[11] == 0 &&
	       buf[12] == 0x88 && buf[19] == 0x11 && buf[20] == 0,
	       "the unaligned store changed exactly its 8 bytes");

	m.op = MKTME_LAB_XADD;
	m.offset = 64;
	m.value = 5;
	lab_mem(&m);
	m.value = 7;
	tap_ok(lab_mem(&m) == 0 && m.value == 5,
	       "LOCK XADD through a KeyID alias");
	m.op = MKTME_LAB_CMPXCHG;
	m.expected = 12;
	m.value = 99;
	tap_ok(lab_mem(&m) == 0 && m.value == 12,
	       "LOCK CMPXCHG through a KeyID alias (old value 12)");
	m.op = MKTME_LAB_READ64;
	tap_ok(lab_mem(&m) == 0 && m.value == 99,
	       "the CMPXCHG stored its new value");

	lab_write(pa, 1, 0, 256, code, sizeof(code));
	user = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED,
		    lab_fd, keyed(pa, 1));
	tap_ok(user != MAP_FAILED, "mmap of a KeyID-1 alias into user space");
	if (user != MAP_FAILED) {
		uint64_t (*fn)(void) = (uint64_t (*)(void))(user + 256);

		tap_ok(fn() == 0x1234abcd,
		       "instruction fetch through a KeyID alias");
		tap_ok(memcmp(user + 256, code, sizeof(code)) == 0,
		       "user-mode loads through a KeyID alias");
		memcpy(user + 512, msg, sizeof(msg));
		tap_ok(read_is_at(pa, 1, 512, msg, sizeof(msg)) &&
		       !read_is_at(pa, 0, 512, msg, sizeof(msg)),
		       "user-mode stores through a KeyID alias are encrypted");
		munmap(user, PAGE);
	}
	lab_free(pa);
}

/*
 * A key change with the page still mapped through its KeyID (its TLB
 * entries would outlive the change): the view of the old key is written
 * back with the old key and dropped, so the mapping reads what the new
 * key makes of the ciphertext, and the old key, programmed again, finds
 * the message.
 */
static void test_rekey_mapped(void)
{
	uint64_t pa = lab_alloc();
	uint8_t ct[sizeof(msg)], got[sizeof(msg)];
	volatile uint8_t *k1;

	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);
	k1 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, lab_fd,
		  keyed(pa, 1));
	if (!tap_ok(k1 != MAP_FAILED, "re-key: a page mapped through KeyID 1"))
		goto out;
	memcpy((void *)k1, msg, sizeof(msg));
	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128, key_b,
		tweak_b, 16);
	memcpy(got, (const void *)k1, sizeof(got));
	tap_ok(memcmp(got, msg, sizeof(msg)),
	       "re-key: SET_KEY_DIRECT with another key, the mapping no longer "
	       "reads the plaintext of the old key");
	program(0, 1, KEYID_NO_ENCRYPT, ENC_ALG_AES_XTS_128, NULL, NULL, 16);
	memcpy(got, (const void *)k1, sizeof(got));
	tap_ok(lab_read(pa, 0, 0, 0, ct, sizeof(ct)) == 0 &&
	       memcmp(ct, msg, sizeof(msg)) && !memcmp(got, ct, sizeof(ct)),
	       "re-key: NO_ENCRYPT, the mapping reads the ciphertext KeyID 0 "
	       "reads");
	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);
	memcpy(got, (const void *)k1, sizeof(got));
	tap_ok(!memcmp(got, msg, sizeof(msg)),
	       "re-key: the old key again, the mapping reads the message (it "
	       "was written back with the old key before the change)");
	munmap((void *)k1, PAGE);
out:
	lab_free(pa);
}

/*
 * Translated code follows the view: code run through KeyID 1 at one
 * virtual address, then other code written through KeyID 2 to the same
 * page and run at the same address through a KeyID-2 mapping.  The
 * translated blocks of KeyID 1's code must not run again.
 */
static void test_code_rekeyed(void)
{
	/* endbr64; mov $imm32, %eax; ret */
	uint8_t code[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0x11, 0x11, 0x11,
			   0x11, 0xc3 };
	uint64_t pa = lab_alloc();
	uint64_t (*fn)(void);
	uint64_t r1 = 0, r2 = 0;
	uint8_t *user;

	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);
	program(0, 2, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128, key_b,
		tweak_b, 16);
	lab_write(pa, 1, 0, 128, code, sizeof(code));
	user = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, lab_fd,
		    keyed(pa, 1));
	if (user != MAP_FAILED) {
		fn = (uint64_t (*)(void))(user + 128);
		r1 = fn() + fn();
		munmap(user, PAGE);
		memset(code + 5, 0x33, 4);
		lab_write(pa, 2, 0, 128, code, sizeof(code));
		user = mmap(user, PAGE, PROT_READ | PROT_EXEC,
			    MAP_SHARED | MAP_FIXED, lab_fd, keyed(pa, 2));
	}
	if (user != MAP_FAILED) {
		fn = (uint64_t (*)(void))(user + 128);
		r2 = fn();
		munmap(user, PAGE);
	}
	tap_ok(r1 == 2 * 0x11111111ull && r2 == 0x33333333,
	       "translated code: KeyID 2's code at the address KeyID 1's ran "
	       "from runs, not KeyID 1's translation (%#llx, %#llx)",
	       (unsigned long long)r1, (unsigned long long)r2);
	lab_free(pa);
}

/*
 * Key tables are per package, and a package's memory controller encrypts
 * the RAM it owns (its NUMA node) with its own table, whichever CPU
 * accesses it.  The lab gives each socket one CPU and one node.
 */
static void test_sockets(void)
{
	uint64_t pa0, pa1;
	uint8_t buf[sizeof(msg)];

	if (nr_cpus < 2) {
		tap_skip("needs -smp 2,sockets=2", "per-package key tables");
		return;
	}
	pa0 = lab_alloc_node(0);
	pa1 = lab_alloc_node(1);

	/* KeyID 5 on package 0 only */
	program(0, 5, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128, key_b,
		tweak_b, 16);
	lab_write(pa0, 5, 1, 0, msg, sizeof(msg));
	tap_ok(read_is(pa0, 5, 0, msg, sizeof(msg)) &&
	       read_is(pa0, 5, 1, msg, sizeof(msg)) &&
	       !read_is(pa0, 0, 0, msg, sizeof(msg)),
	       "sockets: package 0's memory is encrypted with its KeyID 5 key, "
	       "for CPUs of both packages");
	lab_write(pa1, 5, 0, 0, msg, sizeof(msg));
	tap_ok(read_is(pa1, 0, 0, msg, sizeof(msg)),
	       "sockets: package 1, where KeyID 5 is not programmed, stores "
	       "its memory under the TME key (KeyID 0 reads it)");

	/* Now on package 1 too, with another key */
	program(1, 5, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);
	lab_write(pa1, 5, 0, 0, msg, sizeof(msg));
	tap_ok(read_is(pa1, 5, 1, msg, sizeof(msg)) &&
	       !read_is(pa1, 0, 1, msg, sizeof(msg)),
	       "sockets: programmed on package 1, its memory is encrypted");
	tap_ok(lab_read(pa1, 0, 0, 0, buf, sizeof(buf)) == 0 &&
	       lab_write(pa0, 0, 0, 0, buf, sizeof(buf)) == 0 &&
	       !read_is(pa0, 5, 0, msg, sizeof(msg)),
	       "sockets: ciphertext of package 1's key does not decrypt with "
	       "package 0's key for the same KeyID");

	/* SET_KEY_RANDOM on each package: each node's memory works */
	program(0, 6, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL, NULL,
		16);
	program(1, 6, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL, NULL,
		16);
	lab_write(pa0, 6, 1, 0, msg, sizeof(msg));
	lab_write(pa1, 6, 0, 0, msg, sizeof(msg));
	tap_ok(read_is(pa0, 6, 0, msg, sizeof(msg)) &&
	       read_is(pa0, 6, 1, msg, sizeof(msg)) &&
	       read_is(pa1, 6, 0, msg, sizeof(msg)) &&
	       read_is(pa1, 6, 1, msg, sizeof(msg)),
	       "sockets: SET_KEY_RANDOM on every package serves every CPU");
	tap_ok(!read_is(pa0, 0, 0, msg, sizeof(msg)) &&
	       !read_is(pa1, 0, 0, msg, sizeof(msg)),
	       "sockets: and both nodes hold ciphertext");
	lab_free(pa0);
	lab_free(pa1);
}

/*
 * One page used through two KeyIDs at once by two vCPUs, each on its own
 * line, for a second: as on hardware, where the lines are independent,
 * each vCPU always reads back what it wrote, and never the other's
 * plaintext through its own KeyID, however often the page changes hands.
 */
struct hammer {
	volatile int ready[2], stop;
	volatile unsigned int rounds[2], bad[2];
};

static void hammer(struct hammer *h, volatile uint64_t *p, unsigned int me,
		   unsigned int line, unsigned int other)
{
	unsigned int i, bad = 0;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(me, &set);
	sched_setaffinity(0, sizeof(set), &set);
	h->ready[me] = 1;
	while (!h->ready[!me])
		;
	for (i = 0; !h->stop; i++) {
		uint64_t v = (uint64_t)line << 48 | i, o0, o7;

		p[line * 8] = v;
		p[line * 8 + 7] = ~v;
		o0 = p[other * 8];
		o7 = p[other * 8 + 7];
		if (p[line * 8] != v || p[line * 8 + 7] != ~v ||
		    (o0 >> 48 == other && o7 == ~o0))
			bad++;
	}
	h->rounds[me] = i;
	h->bad[me] = bad;
}

/*
 * A count of query-mktme: owner-changes (pages whose view changed KeyID),
 * keyed-pages (pages whose view a KeyID holds); -1 if unavailable
 */
static long long mktme_count(const char *field)
{
	json_object *info = lab_qmp("query-mktme", NULL), *v;
	long long n = -1;

	if (info && json_object_object_get_ex(info, field, &v))
		n = json_object_get_int64(v);
	json_object_put(info);
	return n;
}

static void test_concurrent(void)
{
	volatile uint64_t *k1, *k2;
	long long changes;
	struct hammer *h;
	uint64_t pa;
	pid_t pid;

	if (nr_cpus < 2) {
		tap_skip("needs 2 CPUs", "two vCPUs on one page through two "
			 "KeyIDs");
		return;
	}
	pa = lab_alloc_node(0);
	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);
	program(0, 2, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128, key_b,
		tweak_b, 16);
	h = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	k1 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, lab_fd,
		  keyed(pa, 1));
	if (!tap_ok(h != MAP_FAILED && k1 != MAP_FAILED,
		    "concurrent: one page mapped through KeyID 1"))
		return;
	changes = mktme_count("owner-changes");
	pid = fork();
	if (pid == 0) {
		/* The driver's mappings are not inherited (VM_DONTCOPY) */
		k2 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			  lab_fd, keyed(pa, 2));
		if (k2 != MAP_FAILED)
			hammer(h, k2, 1, 40, 3);
		_exit(k2 == MAP_FAILED);
	}
	if (fork() == 0) {
		sleep(1);
		h->stop = 1;
		_exit(0);
	}
	hammer(h, k1, 0, 3, 40);
	while (wait(NULL) > 0)
		;
	changes = mktme_count("owner-changes") - changes;
	tap_ok(pid > 0 && h->rounds[0] && h->rounds[1] && !h->bad[0] &&
	       !h->bad[1] && changes >= 2,
	       "concurrent: CPU 0 through KeyID 1 and CPU 1 through KeyID 2, "
	       "one line each of the same page, read back their writes and "
	       "never the other's plaintext (rounds %u and %u, bad %u and %u, "
	       "%lld changes of owner)", h->rounds[0], h->rounds[1],
	       h->bad[0], h->bad[1], changes);
	k2 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, lab_fd,
		  keyed(pa, 2));
	tap_ok(k2 != MAP_FAILED && h->rounds[0] && h->rounds[1] &&
	       k1[3 * 8] == ((3ull << 48) | (h->rounds[0] - 1)) &&
	       k2[40 * 8] == ((40ull << 48) | (h->rounds[1] - 1)),
	       "concurrent: and each KeyID's last write is what it reads at "
	       "the end");
	munmap((void *)k1, PAGE);
	munmap((void *)k2, PAGE);
	munmap(h, PAGE);
	lab_free(pa);
}

/*
 * CLFLUSH of every line of a page through its KeyID, as the kernel does
 * to a keyed page it frees, leaves nothing of the page in the cache: the
 * view goes (one keyed page fewer), so no later write-back of it can
 * overwrite what reaches DRAM since (a device's DMA into the page, reused
 * through KeyID 0).  DRAM holds the ciphertext of everything written,
 * a line written between the flushes included.  Half a page flushed
 * keeps the view.
 */
static void test_flush_page(void)
{
	uint64_t pa = lab_alloc();
	long long before, half, all;

	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);
	lab_write(pa, 1, 0, 0, msg, sizeof(msg));
	before = mktme_count("keyed-pages");
	lab_clflush(pa, 1, 0, 0, PAGE / 2);
	half = mktme_count("keyed-pages");
	lab_write(pa, 1, 0, PAGE / 2 + 64, msg, sizeof(msg));
	lab_clflush(pa, 1, 0, PAGE / 2, PAGE / 2);
	all = mktme_count("keyed-pages");
	tap_ok(before > 0 && half == before,
	       "CLFLUSH of half a page through its KeyID keeps its view "
	       "(keyed pages %lld, then %lld)", before, half);
	tap_ok(before > 0 && all == before - 1,
	       "CLFLUSH of every line drops it (keyed pages %lld)", all);
	tap_ok(read_is_at(pa, 1, 0, msg, sizeof(msg)) &&
	       read_is_at(pa, 1, PAGE / 2 + 64, msg, sizeof(msg)) &&
	       !read_is_at(pa, 0, PAGE / 2 + 64, msg, sizeof(msg)),
	       "and DRAM holds the ciphertext of both writes, the one between "
	       "the flushes included");
	lab_free(pa);
}

/*
 * PCONFIG in an SVM guest raises #UD: the emulated counterpart of VMX's
 * "enable PCONFIG" control, which SVM does not have.  A flat 32-bit guest
 * of the test driver's own hypervisor tries to program KeyID 10.
 */
static void test_pconfig_in_guest(void)
{
	/* xor %eax, %eax; mov $0x3000, %ebx; pconfig; hlt */
	static const uint8_t code[] = { 0x31, 0xc0, 0xbb, 0x00, 0x30, 0x00,
					0x00, 0x0f, 0x01, 0xc5, 0xf4 };
	struct mktme_lab_svm_run r = { .rip = 0x1000, .rsp = 0x2000 };
	struct mktme_lab_pconfig p;
	json_object *info;
	int fd, ret;

	if (cpu_is_intel()) {
		tap_skip("no SVM on the Intel model", "PCONFIG in an SVM guest");
		return;
	}
	fd = guest_open(4);
	key_program(&p, 0, 10, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128,
		    NULL, NULL, 16);
	if (!tap_ok(fd >= 0 && guest_write(fd, 0x1000, 0, code, sizeof(code)) &&
		    guest_write(fd, 0x3000, 0, p.st, sizeof(p.st)),
		    "a flat 32-bit SVM guest of the test driver"))
		goto out;
	ret = ioctl(fd, MKTME_LAB_SVM_RUN, &r);
	tap_ok(ret == 0 && r.exit_code == SVM_EXIT_EXCP_UD &&
	       r.rip_out == 0x1007,
	       "PCONFIG in an SVM guest raises #UD (exit %#llx at %#llx)",
	       (unsigned long long)r.exit_code,
	       (unsigned long long)r.rip_out);
	info = lab_qmp("query-mktme", NULL);
	tap_ok(info && !lab_key_table_has(info, -1, 10, "set-key-random",
					  "aes-xts-128"),
	       "PCONFIG in an SVM guest: the key table did not change");
	json_object_put(info);
out:
	if (fd >= 0)
		close(fd);
}

static void test_monitor(void)
{
	json_object *info;
	char *text;

	program(0, 7, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_256, NULL, NULL,
		32);
	info = lab_qmp("query-mktme", NULL);
	tap_ok(info && lab_key_table_has(info, 0, 7, "set-key-random",
				     "aes-xts-256") &&
	       lab_key_table_has(info, 0, 4, "no-encrypt", "aes-xts-256"),
	       "query-mktme shows package 0's KeyIDs 4 and 7 as programmed");
	tap_ok(info && !strstr(json_object_to_json_string(info), "key\":\"") &&
	       !lab_key_table_has(info, 0, 8, "set-key-random", "aes-xts-256"),
	       "query-mktme lists no key bytes and no unprogrammed KeyID");
	json_object_put(info);
	text = lab_hmp("info mktme");
	tap_ok(text && strstr(text, "KeyID     7  set-key-random"),
	       "HMP info mktme shows the key table");
	free(text);
}

static void test_injection(void)
{
	tap_ok(lab_qmp_args("mktme-inject-pconfig-error",
			    "{\"status\":\"device-busy\",\"count\":2}") != NULL,
	       "inject: two DEVICE_BUSY");
	tap_ok(program(0, 8, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == DEVICE_BUSY &&
	       program(0, 8, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == DEVICE_BUSY,
	       "inject: the next two PCONFIGs return DEVICE_BUSY");
	tap_ok(program(0, 8, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == PROG_SUCCESS,
	       "inject: the third succeeds");
	lab_qmp_args("mktme-inject-pconfig-error",
		     "{\"status\":\"entropy-error\",\"count\":1}");
	tap_ok(program(0, 8, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == ENTROPY_ERROR,
	       "inject: ENTROPY_ERROR");
	tap_ok(program(0, 0, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		       NULL, 16) == INVALID_KEYID,
	       "inject: a malformed request still fails on its own error");
}

static void checker_on(void)
{
	json_object_put(lab_qmp_args("mktme-checker-set",
				     "{\"enabled\":true,\"reset\":true}"));
}

/* Write through one KeyID, maybe flush an alias, read through another */
struct checker_case {
	unsigned int write;
	int flush;		/* KeyID alias flushed, or -1 */
	unsigned int read;
	bool violation;
	const char *what;
};

static const struct checker_case checker_cases[] = {
	{ 1, -1, 0, true, "a KeyID-0 read of a line written through KeyID 1 "
			  "without a flush is caught" },
	{ 1, 1, 0, false, "silent when the KeyID-1 alias is flushed first" },
	{ 1, 0, 0, true, "flushing the wrong alias (KeyID 0) does not help" },
	{ 0, -1, 1, true, "a KeyID-1 read after a KeyID-0 write is caught" },
	{ 0, 0, 1, false, "silent when the KeyID-0 alias is flushed first" },
};

/*
 * The checker with mappings that stay: a KeyID-1 and a KeyID-0 mapping of
 * one page in user space, whose TLB entries outlive each access (the
 * KeyID-1 one on the fast path, the KeyID-0 one sent to the slow window
 * once the page has lines dirty through KeyID 1).  It counts by line:
 * what KeyID 1 writes on the fast path after KeyID 0 started reading is
 * caught too, clean lines never are, and after a WBINVD one line written
 * and flushed leaves the others clean.
 */
static void test_checker_mapped(uint64_t pa)
{
	volatile uint64_t *k0, *k1;
	struct mktme_lab_mem wbinvd = { .phys = pa, .op = MKTME_LAB_WBINVD };
	uint64_t n;
	uint64_t stamp = 0x5eed0000c0de0000ull ^ (uint64_t)getpid();

	k1 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, lab_fd,
		  keyed(pa, 1));
	k0 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, lab_fd,
		  keyed(pa, 0));
	if (!tap_ok(k0 != MAP_FAILED && k1 != MAP_FAILED,
		    "checker: one page mapped through KeyIDs 0 and 1"))
		return;
	/*
	 * All lines clean, then line 0 written through KeyID 1.  No system
	 * call between the accesses: the TLB entries stay.
	 */
	lab_mem(&wbinvd);
	checker_on();
	k1[0] = stamp;
	(void)k0[5 * 8];	/* line 5: clean */
	k1[7 * 8] = stamp + 7;	/* on the fast path, while KeyID 0 reads */
	(void)k0[7 * 8];	/* line 7: dirty through KeyID 1 */
	n = lab_checker_count("read-violations");
	tap_ok(n == 1 &&
	       lab_checker_count("last-violation-address") == pa + 7 * 64 &&
	       lab_checker_count("last-violation-write-keyid") == 1,
	       "checker: a line written through KeyID 1 on the fast path "
	       "after KeyID 0 began to read the page is caught when KeyID 0 "
	       "reads it, a clean line of the page is not (%llu violations)",
	       (unsigned long long)n);

	/* After a WBINVD: one line written and flushed, others read */
	lab_mem(&wbinvd);
	checker_on();
	k1[3 * 8] = stamp + 3;
	__builtin_ia32_clflush((const void *)&k1[3 * 8]);
	(void)k0[9 * 8];
	(void)k0[3 * 8];
	k1[11 * 8] = stamp + 11;
	(void)k0[11 * 8];
	n = lab_checker_count("read-violations");
	tap_ok(n == 1 &&
	       lab_checker_count("last-violation-address") == pa + 11 * 64,
	       "checker: after a WBINVD, a line written and flushed through "
	       "KeyID 1 leaves the page's other lines clean, and the next "
	       "unflushed write is caught (%llu violations)",
	       (unsigned long long)n);
	munmap((void *)k0, PAGE);
	munmap((void *)k1, PAGE);
}

static void test_checker(void)
{
	uint64_t pa = lab_alloc();
	uint8_t buf[64];

	program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256, key_a,
		tweak_a, 32);

	for (size_t i = 0; i < sizeof(checker_cases) / sizeof(checker_cases[0]);
	     i++) {
		const struct checker_case *c = &checker_cases[i];
		uint64_t n;

		checker_on();
		lab_write(pa, c->write, 0, 0, msg, sizeof(msg));
		if (c->flush >= 0)
			lab_clflush(pa, c->flush, 0, 0, PAGE);
		lab_read(pa, c->read, 0, 0, buf, sizeof(buf));
		n = lab_checker_count("read-violations");
		tap_ok(c->violation ? n >= 1 && n != UINT64_MAX : n == 0,
		       "checker: %s (%llu violations)", c->what,
		       (unsigned long long)n);
	}

	checker_on();
	lab_write(pa, 1, 0, 0, msg, sizeof(msg));
	{
		struct mktme_lab_mem m = { .phys = pa, .op = MKTME_LAB_WBINVD };

		lab_mem(&m);
	}
	lab_read(pa, 0, 0, 0, buf, sizeof(buf));
	tap_ok(lab_checker_count("read-violations") == 0 &&
	       lab_checker_count("flushes") >= 1,
	       "checker: WBINVD flushes every alias");

	test_checker_mapped(pa);

	json_object_put(lab_qmp_args("mktme-checker-set",
				     "{\"enabled\":false,\"reset\":true}"));
	lab_write(pa, 1, 0, 0, msg, sizeof(msg));
	lab_read(pa, 0, 0, 0, buf, sizeof(buf));
	tap_ok(lab_checker_count("read-violations") == 0,
	       "checker: off, nothing is counted");
	lab_free(pa);
}

int main(void)
{
	cpu_set_t cpu0;

	tap_begin();
	nr_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/*
	 * Keys are per package: user-mode accesses through KeyID aliases
	 * must run where the key was programmed (CPU 0, package 0).
	 */
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);
	if (lab_open() < 0) {
		tap_ok(false, "open the mktme_lab test driver");
		return tap_end();
	}
	if (!lab_info.tme) {
		test_absent();
		return tap_end();
	}
	test_enumeration();
	test_pconfig_errors();
	test_commands();
	test_access_kinds();
	test_rekey_mapped();
	test_code_rekeyed();
	test_sockets();
	test_concurrent();
	test_flush_page();
	test_pconfig_in_guest();
	test_monitor();
	test_injection();
	test_checker();
	return tap_end();
}
