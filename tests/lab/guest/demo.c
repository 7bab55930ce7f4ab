// SPDX-License-Identifier: GPL-2.0
/*
 * make demo, first version: the emulated TME-MK host at work.
 * Shows what Linux enumerated, programs a KeyID, writes a message through
 * it and shows the same physical page through the KeyID and through
 * KeyID 0 (what any other KeyID, or the memory bus, sees).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>

#include "lab.h"

static const char msg[] = "Hello from KeyID 1: only this key reads me.";

static void hexdump(const char *label, uint64_t addr, const uint8_t *p,
		    size_t len)
{
	printf("  %s\n", label);
	for (size_t i = 0; i < len; i += 16) {
		printf("    %012llx  ", (unsigned long long)(addr + i));
		for (size_t j = 0; j < 16; j++)
			printf("%02x ", p[i + j]);
		printf(" |");
		for (size_t j = 0; j < 16; j++)
			putchar(p[i + j] >= 32 && p[i + j] < 127 ? p[i + j] : '.');
		printf("|\n");
	}
}

static void show_dmesg(void)
{
	int len = klogctl(10, NULL, 0);
	char *buf = calloc(1, len + 1), *line, *save;

	klogctl(3, buf, len);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (strstr(line, "x86/tme") || strstr(line, "x86/mktme"))
			printf("  dmesg: %s\n", line);
	free(buf);
}

int main(void)
{
	uint8_t via_key[64], via_0[64], bus[64];
	uint64_t pa, act = 0;
	char *info;
	int st;

	printf("\n== 1. What Linux enumerated on the emulated TME-MK host\n");
	if (lab_open() < 0)
		return 1;
	show_dmesg();
	lab_msr_read(0, 0x982, &act);
	printf("  CPUID: TME %s, PCONFIG %s; MAXPHYADDR %u, of which %u KeyID "
	       "bits (KeyID at bit %u); the kernel uses %u address bits\n",
	       lab_info.tme ? "yes" : "no", lab_info.pconfig ? "yes" : "no",
	       lab_info.maxphyaddr, lab_info.keyid_bits, lab_info.keyid_shift,
	       lab_info.kernel_phys_bits);
	printf("  IA32_TME_ACTIVATE = %#llx (locked, enabled)\n",
	       (unsigned long long)act);

	printf("\n== 2. PCONFIG: program KeyID 1 with a CPU-generated "
	       "AES-XTS-256 key\n");
	st = program(0, 1, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_256, NULL,
		     NULL, 32);
	printf("  PCONFIG MKTME_KEY_PROGRAM -> status %d (%s)\n", st,
	       st == 0 ? "success" : "failed");
	info = lab_hmp("info mktme");
	if (info) {
		printf("  the emulator's key table (HMP info mktme):\n");
		for (char *l = strtok(info, "\r\n"); l; l = strtok(NULL, "\r\n"))
			printf("    %s\n", l);
		free(info);
	}

	printf("\n== 3. Write a message through KeyID 1, read the same "
	       "physical page back\n");
	pa = lab_alloc();
	lab_write(pa, 1, 0, 0, msg, sizeof(msg));
	lab_read(pa, 1, 0, 0, via_key, sizeof(via_key));
	lab_read(pa, 0, 0, 0, via_0, sizeof(via_0));
	lab_physread(pa, bus, sizeof(bus));
	hexdump("through KeyID 1 (the owner):",
		pa | 1ull << lab_info.keyid_shift, via_key, 48);
	hexdump("through KeyID 0 (any other user of the page):", pa, via_0, 48);
	hexdump("in RAM, as the emulator's memory bus holds it (QMP pmemsave):",
		pa, bus, 48);
	printf("\n");

	tap_begin();
	tap_ok(st == 0, "KeyID 1 programmed");
	tap_ok(memcmp(via_key, msg, sizeof(msg)) == 0,
	       "KeyID 1 reads the message");
	tap_ok(memcmp(via_0, msg, 16) && memcmp(via_0 + 16, msg + 16, 16),
	       "KeyID 0 reads only ciphertext");
	tap_ok(memcmp(bus, via_0, 48) == 0, "RAM holds that ciphertext");
	lab_free(pa);
	return tap_end();
}
