# mktme-kvm: per-guest memory encryption for KVM on Intel TME-MK.
#
#   make demo        set up everything, then show the emulated platform at work
#   make test        set up everything, then run every test
#
# Both start from a fresh Debian 12 machine (as root): they install the
# packages (make deps), fetch and build the pinned sources into
# $(CACHE), and reuse what is cached on later runs.

CACHE ?= /var/cache/mktme-kvm
BUILD := build
LAB := $(BUILD)/lab
export MKTME_CACHE := $(CACHE)

PY := /usr/bin/python3
CFLAGS_USER := -std=gnu11 -O2 -g -Wall -Wextra -Werror
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer

.PHONY: all deps qemu qemu-tree qemu-patches qemu-check linux linux-tree \
	linux-patches linux-release linux-guest lab test test-qemu test-migrate demo bench bench-hook checkpatch clean \
	host-image install-libvirt

all: qemu linux lab

$(BUILD)/.deps: scripts/deps.sh
	scripts/deps.sh
	@mkdir -p $(BUILD) && touch $@

deps: $(BUILD)/.deps

# The patched QEMU (cached by content hash); its path in $(BUILD)/qemu-prefix
qemu: deps
	@mkdir -p $(BUILD)
	scripts/qemu.sh build > $(BUILD)/qemu-prefix.tmp
	@mv $(BUILD)/qemu-prefix.tmp $(BUILD)/qemu-prefix
	@echo "QEMU: $$(cat $(BUILD)/qemu-prefix)/bin/qemu-system-x86_64"

# The lab kernel: linux-source-6.12 + kvm/ (cached); its directory in
# $(BUILD)/linux-dir
linux: deps
	@mkdir -p $(BUILD)
	scripts/linux.sh build > $(BUILD)/linux-dir.tmp
	@mv $(BUILD)/linux-dir.tmp $(BUILD)/linux-dir
	@echo "Linux: $$(cat $(BUILD)/linux-dir)/bzImage"

# The nested guests' kernel: pristine linux-source-6.12, tinyconfig plus
# kvm/config-guest (cached); its directory in $(BUILD)/linux-guest-dir
$(BUILD)/linux-guest-dir: kvm/config-guest scripts/linux.sh scripts/common.sh | deps
	@mkdir -p $(BUILD)
	LINUX_VARIANT=guest scripts/linux.sh build > $@.tmp
	@mv $@.tmp $@
linux-guest: $(BUILD)/linux-guest-dir

# Patch-series workflow: a git tree to edit, and back into patches
qemu-tree: deps
	scripts/qemu.sh tree
qemu-patches:
	scripts/qemu.sh export
# QEMU's own unit tests and x86_64 qtests, patched against pristine
qemu-check: deps
	scripts/qemu.sh compare
linux-tree: deps
	scripts/linux.sh tree
linux-patches:
	scripts/linux.sh export

# The lab: test driver, guest programs and the initramfs that carries them
LAB_GUEST_SRC := tests/lab/guest/lab.c tests/lab/guest/lab.h \
	tests/lab/guest/svm.h tests/lab/module/mktme_lab_uapi.h

$(LAB)/mktme_lab.ko: tests/lab/module/mktme_lab.c tests/lab/module/mktme_lab_uapi.h | deps
	@mkdir -p $(LAB)/module
	cp tests/lab/module/Makefile tests/lab/module/*.[ch] $(LAB)/module/
	$(MAKE) -s -C /usr/src/linux-headers-$$(bash -c '. scripts/common.sh; lab_kver') \
		M=$(CURDIR)/$(LAB)/module modules
	cp $(LAB)/module/mktme_lab.ko $@

$(LAB)/%: tests/lab/guest/%.c $(LAB_GUEST_SRC) | deps
	@mkdir -p $(LAB)
	$(CC) $(CFLAGS_USER) -static -o $@ $< tests/lab/guest/lab.c \
		-lkeyutils -ljson-c

# The keyed-memory programs share keyed_lib.c
KEYED_PROGS := keyed keyed_errors keyed_pages keyed_algs
$(addprefix $(LAB)/,$(KEYED_PROGS)): $(LAB)/%: tests/lab/guest/%.c \
		tests/lab/guest/keyed_lib.c tests/lab/guest/keyed_lib.h \
		$(LAB_GUEST_SRC) | deps
	@mkdir -p $(LAB)
	$(CC) $(CFLAGS_USER) -static -o $@ $< tests/lab/guest/keyed_lib.c \
		tests/lab/guest/lab.c -lkeyutils -ljson-c

# The KVM programs share a minimal VMM
KVM_PROGS := kvm_keyed kvmfaultbench
$(addprefix $(LAB)/,$(KVM_PROGS)): $(LAB)/%: tests/lab/guest/%.c \
		tests/lab/guest/kvm_lab.c tests/lab/guest/kvm_lab.h \
		$(LAB_GUEST_SRC) | deps
	@mkdir -p $(LAB)
	$(CC) $(CFLAGS_USER) -static -o $@ $< tests/lab/guest/kvm_lab.c \
		tests/lab/guest/lab.c -lkeyutils -ljson-c

# The kernel series' kselftests, built with the lab kernel
KSELFTESTS := encrypt_mprotect_test mktme_test
$(addprefix $(LAB)/,$(KSELFTESTS)): linux
	@mkdir -p $(LAB)
	cp "$$(cat $(BUILD)/linux-dir)/$(@F)" $@

$(LAB)/initramfs.cpio.gz: tests/lab/mkinitramfs.sh $(LAB)/mktme_lab.ko \
		$(LAB)/conformance $(LAB)/demo $(LAB)/bench $(LAB)/keys $(LAB)/keybench \
		$(addprefix $(LAB)/,$(KEYED_PROGS)) $(LAB)/keyedbench $(LAB)/nested \
		$(LAB)/hotpathbench $(addprefix $(LAB)/,$(KVM_PROGS)) $(LAB)/mktmectl \
		$(LAB)/checker_end \
		$(addprefix $(LAB)/,$(KSELFTESTS)) tests/lab/guest/kselftests.sh \
		tests/lab/guest/cli.sh \
		tests/lab/guest/demo-keys.sh
	tests/lab/mkinitramfs.sh $@ $(filter-out tests/lab/mkinitramfs.sh,$^)

# memory-backend-mktme's lab test (suite qemu_keyed): the emulated host
# runs the patched QEMU with KVM from its own initramfs, with a small
# Linux guest (the guest kernel, busybox and mktme_guest)
$(LAB)/guest.cpio.gz: tests/lab/qemu/mkguest.sh tests/lab/qemu/guest-init \
		$(LAB)/mktme_guest
	tests/lab/qemu/mkguest.sh $@ $(LAB)/mktme_guest
$(LAB)/qemu-stage/.staged: tests/lab/qemu/stage-qemu.sh $(BUILD)/qemu-prefix \
		$(BUILD)/linux-guest-dir
	rm -rf $(LAB)/qemu-stage
	tests/lab/qemu/stage-qemu.sh $(LAB)/qemu-stage $$(cat $(BUILD)/qemu-prefix) \
		$$(cat $(BUILD)/linux-guest-dir)/bzImage
	touch $@
$(LAB)/initramfs-qemu.cpio.gz: tests/lab/mkinitramfs.sh $(LAB)/qemu_keyed \
		$(LAB)/mktmectl $(LAB)/guest.cpio.gz $(LAB)/qemu-stage/.staged \
		tests/lab/qemu/bench-boot.sh
	tests/lab/mkinitramfs.sh $@ $(LAB)/qemu_keyed $(LAB)/mktmectl \
		$(LAB)/guest.cpio.gz tests/lab/qemu/bench-boot.sh \
		$$(ls -d $(LAB)/qemu-stage/*)

lab: $(LAB)/initramfs.cpio.gz $(LAB)/initramfs-qemu.cpio.gz

# The release kernel: the lab kernel without lockdep, KASAN and KUnit, as
# an operator runs it (the Debian hosts' and the benchmarks' kernel); its
# directory in $(BUILD)/linux-release-dir
linux-release: deps
	@mkdir -p $(BUILD)
	LINUX_VARIANT=release scripts/linux.sh build > $(BUILD)/linux-release-dir.tmp
	@mv $(BUILD)/linux-release-dir.tmp $(BUILD)/linux-release-dir
	@echo "Linux (release): $$(cat $(BUILD)/linux-release-dir)/bzImage"

# Tests
$(BUILD)/unit/test_lab: tests/unit/test_lab.c $(LAB_GUEST_SRC) | deps
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_USER) $(SANITIZE) -o $@ $< tests/lab/guest/lab.c \
		-lcriterion -ljson-c

# libvirt: the hook, the QEMU wrapper (libvirt-hook/), mktmectl's domain
# verbs.  Installed builds in $(BUILD)/hook, sanitizer builds for the tests.
HOOKD := libvirt-hook
XML_CFLAGS := -I/usr/include/libxml2
HOOK_LIBS := -lxml2 -lkeyutils -ljson-c
HOOK_COMMON := $(HOOKD)/mkerr.c $(HOOKD)/hook_config.c $(HOOKD)/hook_state.c \
	$(HOOKD)/hook_keys.c
HOOK_HDR := $(wildcard $(HOOKD)/*.h) tools/mktmectl/mktme.h
HOOK_SRC := $(HOOKD)/hook.c $(HOOKD)/domain_xml.c tools/mktmectl/mktme.c $(HOOK_COMMON)
WRAPPER_SRC := $(HOOKD)/qemu_wrapper.c $(HOOKD)/qemu_argv.c $(HOOKD)/qmp_proxy.c \
	$(HOOK_COMMON)

$(BUILD)/hook/mktme-kvm-hook: $(HOOK_SRC) $(HOOK_HDR) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -std=c11 $(XML_CFLAGS) -o $@ $(HOOK_SRC) $(HOOK_LIBS)
$(BUILD)/hook/qemu-wrapper: $(WRAPPER_SRC) $(HOOK_HDR) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -std=c11 $(XML_CFLAGS) -o $@ $(WRAPPER_SRC) $(HOOK_LIBS)
$(BUILD)/unit/mktme-kvm-hook: $(HOOK_SRC) $(HOOK_HDR) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -std=c11 $(SANITIZE) $(XML_CFLAGS) -o $@ $(HOOK_SRC) $(HOOK_LIBS)
$(BUILD)/unit/qemu-wrapper: $(WRAPPER_SRC) $(HOOK_HDR) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -std=c11 $(SANITIZE) $(XML_CFLAGS) -o $@ $(WRAPPER_SRC) $(HOOK_LIBS)

# Unit tests of the hook's modules, one file per subject; what several
# tests share is in unit_helpers.c
UNIT_HELPERS := tests/unit/unit_helpers.c tests/unit/unit_helpers.h
HOOK_TESTS := test_domain_xml test_hook_state test_hook_keys test_qemu_argv \
	test_qmp_proxy test_hook test_hook_crash
$(BUILD)/unit/test_domain_xml: tests/unit/test_domain_xml.c $(HOOKD)/domain_xml.c \
		$(HOOKD)/mkerr.c $(HOOK_HDR) | deps
$(BUILD)/unit/test_hook_state: tests/unit/test_hook_state.c $(HOOKD)/hook_state.c \
		$(HOOKD)/mkerr.c $(HOOK_HDR) $(UNIT_HELPERS) | deps
$(BUILD)/unit/test_hook_keys: tests/unit/test_hook_keys.c $(HOOKD)/hook_keys.c \
		$(HOOKD)/mkerr.c $(HOOK_HDR) | deps
$(BUILD)/unit/test_qemu_argv: tests/unit/test_qemu_argv.c $(HOOKD)/qemu_argv.c \
		$(HOOKD)/mkerr.c $(HOOK_HDR) | deps
$(BUILD)/unit/test_qmp_proxy: tests/unit/test_qmp_proxy.c $(HOOKD)/qmp_proxy.c \
		$(HOOKD)/qemu_argv.c $(HOOKD)/mkerr.c $(HOOK_HDR) | deps
HARNESS := tests/unit/hook_harness.c tests/unit/hook_harness.h $(UNIT_HELPERS)
$(BUILD)/unit/test_hook: tests/unit/test_hook.c $(HARNESS) $(HOOKD)/hook_state.c \
		$(HOOKD)/mkerr.c $(HOOK_HDR) $(BUILD)/unit/mktme-kvm-hook \
		$(BUILD)/unit/qemu-wrapper | deps
$(BUILD)/unit/test_hook_crash: tests/unit/test_hook_crash.c $(HARNESS) \
		$(HOOKD)/hook_state.c $(HOOKD)/mkerr.c $(HOOK_HDR) \
		$(BUILD)/unit/mktme-kvm-hook $(BUILD)/unit/qemu-wrapper | deps
$(addprefix $(BUILD)/unit/,$(HOOK_TESTS)):
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -std=c11 $(SANITIZE) $(XML_CFLAGS) -o $@ \
		$(filter %.c,$^) -lcriterion $(HOOK_LIBS)

# mktmectl: for this machine (with the libvirt domain verbs), and static
# for the lab's initramfs (without them: no static libvirt)
MKTMECTL_SRC := tools/mktmectl/mktmectl.c tools/mktmectl/mktme.c \
	tools/mktmectl/mktme.h tools/mktmectl/cli.h tools/mktmectl/holders.c \
	tools/mktmectl/holders.h
MKTMECTL_VIRT_SRC := tools/mktmectl/domain.c $(HOOKD)/domain_xml.c \
	$(HOOKD)/hook_config.c $(HOOKD)/hook_state.c $(HOOKD)/mkerr.c
$(BUILD)/tools/mktmectl: $(MKTMECTL_SRC) $(MKTMECTL_VIRT_SRC) $(HOOK_HDR) | deps
	@mkdir -p $(BUILD)/tools
	$(CC) $(CFLAGS_USER) -std=c11 $(SANITIZE) $(XML_CFLAGS) -DMKTMECTL_LIBVIRT \
		-o $@ $(filter %.c,$^) -lvirt $(HOOK_LIBS)
$(BUILD)/hook/mktmectl: $(MKTMECTL_SRC) $(MKTMECTL_VIRT_SRC) $(HOOK_HDR) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -std=c11 $(XML_CFLAGS) -DMKTMECTL_LIBVIRT \
		-o $@ $(filter %.c,$^) -lvirt $(HOOK_LIBS)

# The libvirt pieces as an operator installs them (DESTDIR for images)
LIBVIRT_BINS := $(BUILD)/hook/mktme-kvm-hook $(BUILD)/hook/qemu-wrapper \
	$(BUILD)/hook/mktmectl
install-libvirt: $(LIBVIRT_BINS)
	install -D -m 0755 $(BUILD)/hook/mktme-kvm-hook $(DESTDIR)/etc/libvirt/hooks/qemu.d/mktme-kvm
	install -D -m 0755 $(BUILD)/hook/qemu-wrapper $(DESTDIR)/usr/libexec/mktme-kvm/qemu-system-x86_64
	install -D -m 0644 $(HOOKD)/domain-encryption.rng $(DESTDIR)/usr/share/mktme-kvm/domain-encryption.rng
	install -D -m 0644 $(HOOKD)/90mktme-kvm.apt $(DESTDIR)/etc/apt/apt.conf.d/90mktme-kvm
	install -D -m 0755 $(BUILD)/hook/mktmectl $(DESTDIR)/usr/local/sbin/mktmectl
	install -D -m 0644 $(HOOKD)/mktme-kvm-hook.8 $(DESTDIR)/usr/local/share/man/man8/mktme-kvm-hook.8
	install -D -m 0644 tools/mktmectl/mktmectl.8 $(DESTDIR)/usr/local/share/man/man8/mktmectl.8

# The lab's Debian host: a bookworm root file system (debootstrap, cached)
# with libvirt 11.3, the patched QEMU and the libvirt pieces, as an ext4
# image (cached by content hash); its path in $(BUILD)/host-image
HOST_STAGE := $(BUILD)/host-stage
HOST_FILES := scripts/rootfs.sh scripts/host-stage.sh $(wildcard tests/lab/host/*)
host-image: qemu $(LIBVIRT_BINS) $(HOST_FILES) $(BUILD)/linux-guest-dir
	rm -rf $(HOST_STAGE)
	$(MAKE) -s install-libvirt DESTDIR=$(CURDIR)/$(HOST_STAGE)
	scripts/host-stage.sh $(HOST_STAGE) $$(cat $(BUILD)/qemu-prefix) \
		$$(cat $(BUILD)/linux-guest-dir)/bzImage
	scripts/rootfs.sh image $(HOST_STAGE) > $(BUILD)/host-image.tmp
	@mv $(BUILD)/host-image.tmp $(BUILD)/host-image
	@echo "Debian host: $$(cat $(BUILD)/host-image)/host.img"

$(LAB)/mktmectl: $(MKTMECTL_SRC) | deps
	@mkdir -p $(LAB)
	$(CC) -std=c11 $(CFLAGS_USER) -static -o $@ $(filter %.c,$^) \
		-lkeyutils -ljson-c
$(BUILD)/unit/test_mktmectl: tests/unit/test_mktmectl.c tools/mktmectl/mktme.c \
		tools/mktmectl/mktme.h $(UNIT_HELPERS) | deps
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_USER) $(SANITIZE) -o $@ $(filter %.c,$^) \
		-lcriterion -ljson-c
$(BUILD)/unit/test_holders: tests/unit/test_holders.c tools/mktmectl/holders.c \
		tools/mktmectl/holders.h $(UNIT_HELPERS) | deps
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_USER) $(SANITIZE) -o $@ $(filter %.c,$^) \
		-lcriterion -ljson-c

test: qemu linux lab $(BUILD)/unit/test_lab $(BUILD)/unit/test_mktmectl \
		$(BUILD)/unit/test_holders \
		$(BUILD)/tools/mktmectl $(addprefix $(BUILD)/unit/,$(HOOK_TESTS)) \
		$(LIBVIRT_BINS) host-image linux-release
	tests/run.sh

demo: qemu linux-release host-image
	tests/lab/demo.sh

# The memory-backend-mktme suite alone
test-qemu: qemu linux lab
	tests/run.sh qemu_keyed

# Live migration between two emulated hosts (libvirt_migrate) alone
test-migrate: qemu linux-release host-image
	tests/run.sh libvirt_migrate

bench: qemu lab linux linux-release host-image $(BUILD)/hook/mktme-kvm-hook
	tests/lab/bench.sh

# The libvirt hook's time per phase alone (make bench runs it too); needs
# neither the lab nor TME-MK
bench-hook: $(BUILD)/hook/mktme-kvm-hook
	@mkdir -p $(BUILD)
	tests/libvirt/hookbench.sh $(HOOK_BENCH_RUNS) | tee $(BUILD)/bench-hook.md
HOOK_BENCH_RUNS ?= 300

checkpatch:
	tests/checkpatch.sh

clean:
	rm -rf $(LAB) $(BUILD)/unit $(BUILD)/.deps $(BUILD)/qemu-prefix
