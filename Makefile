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
	linux-patches lab test demo bench checkpatch clean

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

$(LAB)/initramfs.cpio.gz: tests/lab/mkinitramfs.sh $(LAB)/mktme_lab.ko \
		$(LAB)/conformance $(LAB)/demo $(LAB)/bench $(LAB)/keys $(LAB)/keybench \
		$(LAB)/keyed $(LAB)/keyedbench $(LAB)/nested $(LAB)/mktmectl \
		tests/lab/guest/cli.sh \
		tests/lab/guest/demo-keys.sh
	tests/lab/mkinitramfs.sh $@ $(filter-out tests/lab/mkinitramfs.sh,$^)

lab: $(LAB)/initramfs.cpio.gz

# Tests
$(BUILD)/unit/test_lab: tests/unit/test_lab.c $(LAB_GUEST_SRC) | deps
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_USER) $(SANITIZE) -o $@ $< tests/lab/guest/lab.c \
		-lcriterion -ljson-c

# mktmectl: for this machine, and static for the lab's initramfs
MKTMECTL_SRC := tools/mktmectl/mktmectl.c tools/mktmectl/mktme.c \
	tools/mktmectl/mktme.h
$(BUILD)/tools/mktmectl: $(MKTMECTL_SRC) | deps
	@mkdir -p $(BUILD)/tools
	$(CC) -std=c11 $(CFLAGS_USER) $(SANITIZE) -o $@ $(filter %.c,$^) \
		-lkeyutils -ljson-c
$(LAB)/mktmectl: $(MKTMECTL_SRC) | deps
	@mkdir -p $(LAB)
	$(CC) -std=c11 $(CFLAGS_USER) -static -o $@ $(filter %.c,$^) \
		-lkeyutils -ljson-c
$(BUILD)/unit/test_mktmectl: tests/unit/test_mktmectl.c tools/mktmectl/mktme.c \
		tools/mktmectl/mktme.h | deps
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_USER) $(SANITIZE) -o $@ $(filter %.c,$^) \
		-lcriterion -ljson-c

test: qemu linux lab $(BUILD)/unit/test_lab $(BUILD)/unit/test_mktmectl \
		$(BUILD)/tools/mktmectl
	tests/run.sh

demo: qemu linux lab
	tests/lab/demo.sh

bench: qemu lab
	tests/lab/bench.sh

checkpatch:
	tests/checkpatch.sh

clean:
	rm -rf $(LAB) $(BUILD)/unit $(BUILD)/.deps $(BUILD)/qemu-prefix
