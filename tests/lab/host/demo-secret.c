// SPDX-License-Identifier: GPL-2.0
/*
 * The demo guest's secret: a page of its RAM filled with a readable
 * secret, kept resident, and its guest physical address printed through
 * the kernel log (which the console prints synchronously, as soon as it
 * is written):
 *
 *   mktme-guest: secret at gpa 0x... (4096 bytes): <the secret>
 *
 * The lab's Debian host (tests/lab/host/host-demo.sh) then reads that page
 * as QEMU sees it (plaintext) and as DRAM holds it (ciphertext).  Then,
 * every HEARTBEAT seconds, the guest reads the page back and says whether
 * it still holds the secret, with its address again (so that a host the
 * guest was migrated to finds it in the console it writes):
 *
 *   mktme-guest: secret intact at gpa 0x... (check N)
 *   mktme-guest: secret CHANGED at gpa 0x... offset N (check N)
 *
 * Static, in the tiny guest's initramfs (scripts/host-stage.sh); runs
 * forever.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE	4096
#define PFN_MASK	((UINT64_C(1) << 55) - 1)
#define HEARTBEAT	5
#define SECRET	"mktme-kvm demo: this guest's secret, readable only through its KeyID. "

static void say(const char *line)
{
	char buf[512];
	int fd = open("/dev/kmsg", O_WRONLY);
	int n = snprintf(buf, sizeof(buf), "<2>mktme-guest: %s\n", line);

	if (fd < 0 || write(fd, buf, n) != n)
		printf("mktme-guest: %s\n", line);
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	size_t len = strlen(SECRET);
	char line[256];
	uint64_t entry, gpa;
	unsigned long check;
	char *page;
	int fd;

	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (page == MAP_FAILED || mlock(page, PAGE)) {
		say("secret: no memory");
		return 1;
	}
	for (size_t i = 0; i < PAGE; i++)
		page[i] = SECRET[i % len];

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || pread(fd, &entry, sizeof(entry),
			    (uintptr_t)page / PAGE * sizeof(entry)) != sizeof(entry) ||
	    !(entry >> 63) || !(entry & PFN_MASK)) {
		say("secret: its guest physical address is unknown (pagemap)");
		return 1;
	}
	close(fd);
	gpa = (entry & PFN_MASK) * PAGE;
	snprintf(line, sizeof(line), "secret at gpa 0x%" PRIx64 " (%d bytes): %.*s",
		 gpa, PAGE, (int)len, SECRET);
	say(line);
	for (check = 1;; check++) {
		const volatile char *v = page;	/* read RAM every time */
		size_t i;

		sleep(HEARTBEAT);
		for (i = 0; i < PAGE && v[i] == SECRET[i % len]; i++)
			;
		if (i == PAGE)
			snprintf(line, sizeof(line), "secret intact at gpa 0x%" PRIx64
				 " (check %lu)", gpa, check);
		else
			snprintf(line, sizeof(line), "secret CHANGED at gpa 0x%" PRIx64
				 " offset %zu (check %lu)", gpa, i, check);
		say(line);
	}
}
