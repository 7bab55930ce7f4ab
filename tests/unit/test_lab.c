// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the lab's guest library: the PCONFIG KEY_PROGRAM_STRUCT it
 * builds must be byte-exact, since the conformance suite's #GP and status
 * checks depend on which bytes are set.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../lab/guest/lab.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

Test(key_program, header_fields_are_little_endian)
{
	struct mktme_lab_pconfig p;

	key_program(&p, 3, 0x1234, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_256,
		    NULL, NULL, 32);
	cr_expect_eq(p.cpu, 3);
	cr_expect_eq(p.leaf, 0);
	cr_expect_eq(p.st[0], 0x34);
	cr_expect_eq(p.st[1], 0x12);
	/* KEYID_CTRL: command 1 in bits 7:0, ENC_ALG bit 10 */
	cr_expect_eq(p.st[2], 0x01);
	cr_expect_eq(p.st[3], 0x04);
	cr_expect_eq(p.st[4], 0x00);
	cr_expect_eq(p.st[5], 0x00);
	cr_expect(all_zero(p.st + 6, sizeof(p.st) - 6),
		  "reserved bytes and key fields are zero");
}

Test(key_program, key_fields_at_64_and_128)
{
	struct mktme_lab_pconfig p;
	uint8_t data[32], tweak[32];

	memset(data, 0xd1, sizeof(data));
	memset(tweak, 0x7e, sizeof(tweak));
	key_program(&p, 0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128,
		    data, tweak, 16);
	cr_expect(all_zero(p.st + 6, 58));
	cr_expect_arr_eq(p.st + 64, data, 16);
	cr_expect(all_zero(p.st + 80, 48), "AES-128 uses 16 bytes only");
	cr_expect_arr_eq(p.st + 128, tweak, 16);
	cr_expect(all_zero(p.st + 144, 112));
}

Test(key_program, aes256_uses_32_bytes)
{
	struct mktme_lab_pconfig p;
	uint8_t data[32], tweak[32];

	for (int i = 0; i < 32; i++) {
		data[i] = i + 1;
		tweak[i] = 0x80 + i;
	}
	key_program(&p, 0, 63, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_256,
		    data, tweak, 32);
	cr_expect_arr_eq(p.st + 64, data, 32);
	cr_expect_arr_eq(p.st + 128, tweak, 32);
	cr_expect(all_zero(p.st + 96, 32));
	cr_expect(all_zero(p.st + 160, 96));
}

Test(key_program, previous_contents_are_cleared)
{
	struct mktme_lab_pconfig p;

	memset(&p, 0xff, sizeof(p));
	key_program(&p, 0, 1, KEYID_CLEAR_KEY, ENC_ALG_AES_XTS_128, NULL,
		    NULL, 16);
	cr_expect_eq(p.misalign, 0);
	cr_expect_eq(p.faulted, 0);
	cr_expect(all_zero(p.st + 6, sizeof(p.st) - 6));
}
