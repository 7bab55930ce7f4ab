/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mktme_lab: user interface of the lab's test driver for the emulated
 * TME-MK platform.  Not a kernel interface of mktme-kvm: it reaches the
 * hardware directly (PCONFIG, TME MSRs, KeyID aliases) so that the
 * conformance suite can test the platform under an unmodified kernel.
 */
#ifndef MKTME_LAB_UAPI_H
#define MKTME_LAB_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MKTME_LAB_DEV	"/dev/mktme_lab"

/* Run PCONFIG on @cpu with EAX = @leaf and RBX = the structure @st. */
struct mktme_lab_pconfig {
	__u32 cpu;
	__u32 leaf;
	__u32 misalign;		/* place the structure this many bytes off */
	__u32 faulted;		/* out: 1 if PCONFIG raised an exception */
	__u32 trapnr;		/* out: its vector */
	__u32 status;		/* out: EAX */
	__u32 zf;		/* out: ZF */
	__u32 pad;
	__u8 st[256];		/* KEY_PROGRAM_STRUCT */
};

/* RDMSR or WRMSR on @cpu; @faulted is set on #GP */
struct mktme_lab_msr {
	__u32 cpu;
	__u32 index;
	__u64 value;
	__u32 write;
	__u32 faulted;
};

/* The platform as the driver enumerated it */
struct mktme_lab_info {
	__u32 tme;		/* CPUID.7.0:ECX[13] */
	__u32 pconfig;		/* CPUID.7.0:EDX[18] */
	__u32 maxphyaddr;	/* CPUID.80000008H:EAX[7:0] */
	__u32 keyid_bits;
	__u32 keyid_shift;
	__u32 kernel_phys_bits;	/* boot_cpu_data.x86_phys_bits */
};

enum mktme_lab_op {
	MKTME_LAB_READ,		/* copy len bytes at offset to buf */
	MKTME_LAB_WRITE,	/* copy len bytes from buf to offset */
	MKTME_LAB_CLFLUSH,	/* flush the lines of [offset, offset + len) */
	MKTME_LAB_WBINVD,
	MKTME_LAB_XADD,		/* lock xadd value at offset (8 bytes) */
	MKTME_LAB_CMPXCHG,	/* lock cmpxchg16b-free 8-byte cmpxchg */
	MKTME_LAB_WRITE64,	/* one 8-byte store of value at offset */
	MKTME_LAB_READ64,	/* one 8-byte load at offset into value */
};

/*
 * An access to page @phys through KeyID @keyid, on @cpu.  mmap() of the
 * device at offset phys | keyid << keyid_shift maps the same alias into
 * user space.
 */
struct mktme_lab_mem {
	__u64 phys;
	__u32 keyid;
	__u32 cpu;
	__u32 op;
	__u32 offset;
	__u32 len;
	__u32 pad;
	__u64 value;		/* XADD addend, CMPXCHG new, *64 value; out */
	__u64 expected;		/* CMPXCHG old value */
	__u64 buf;		/* user pointer, READ/WRITE */
	__u64 ns;		/* out: time the access took */
};

/*
 * The driver's own SVM hypervisor (AMD CPUs with SVM and NPT, no KVM):
 * one guest per open file, its RAM at guest-physical 0 .. pages * 4096.
 */
struct mktme_lab_guest_alloc {
	__u64 pages;		/* of guest RAM, zeroed through KeyID 0 */
	__u32 node;		/* NUMA node + 1, 0: any */
	__u32 pad;
};

/* Copy guest RAM through KeyID @keyid of the host pages */
struct mktme_lab_guest_mem {
	__u64 gpa;
	__u64 buf;		/* user pointer */
	__u32 len;
	__u32 keyid;
	__u32 write;
	__u32 pad;
	__u64 hpa;		/* out: host physical address of @gpa */
};

#define MKTME_LAB_SVM_LONG	(1u << 0)	/* 64-bit mode, else flat 32-bit */

struct mktme_lab_svm_run {
	__u32 keyid;		/* KeyID in the NPT leaf entries */
	__u32 npt_keyid;	/* KeyID of the NPT pages: in nCR3, non-leaf */
	__u32 flags;		/* MKTME_LAB_SVM_* */
	__u32 timeout_ms;	/* 0: 10 s */
	__u64 leaf_gpa;		/* OR leaf_bits into the leaf entry of this */
	__u64 leaf_bits;	/* guest page (fault tests) */
	__u64 rip, rsp, cr3;	/* guest start: cr3 with MKTME_LAB_SVM_LONG */
	__u64 regs[8];		/* in and out: rax, rbx, rcx, rdx, rsi, rdi,
				 * rbp, rsp */
	__u64 ad_gpa[2];	/* report the NPT leaf entries of these */
	/* out */
	__u64 npt_pte[2];	/* ... read through npt_keyid after the run */
	__u64 exit_code;	/* SVM_EXIT_*: HLT 0x78, exception 0x40 + n, */
	__u64 exit_info1;	/* NPF 0x400, VMMCALL 0x81, -1 invalid */
	__u64 exit_info2;
	__u64 rip_out;
	__u64 ns;		/* time from the first VMRUN to the last exit */
	__u32 intr_exits;	/* exits for host interrupts, resumed */
	__u32 cpu;		/* where it ran */
	__u32 timed_out;
	__u32 pad;
};

#define MKTME_LAB_IOC			'k'
#define MKTME_LAB_INFO		_IOR(MKTME_LAB_IOC, 0, struct mktme_lab_info)
#define MKTME_LAB_PCONFIG	_IOWR(MKTME_LAB_IOC, 1, struct mktme_lab_pconfig)
#define MKTME_LAB_MSR		_IOWR(MKTME_LAB_IOC, 2, struct mktme_lab_msr)
/*
 * Allocate a zeroed page for this file, on NUMA node n - 1 (0: any node);
 * returns its physical address in place.
 */
#define MKTME_LAB_ALLOC_NODE	_IOWR(MKTME_LAB_IOC, 3, __u64)
#define MKTME_LAB_FREE		_IOW(MKTME_LAB_IOC, 4, __u64)
#define MKTME_LAB_MEM		_IOWR(MKTME_LAB_IOC, 5, struct mktme_lab_mem)
#define MKTME_LAB_GUEST_ALLOC	_IOW(MKTME_LAB_IOC, 6, struct mktme_lab_guest_alloc)
#define MKTME_LAB_GUEST_MEM	_IOWR(MKTME_LAB_IOC, 7, struct mktme_lab_guest_mem)
#define MKTME_LAB_SVM_RUN	_IOWR(MKTME_LAB_IOC, 8, struct mktme_lab_svm_run)

#endif
