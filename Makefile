# minicontainer — the two commands of the README:
#   sudo make demo    set everything up, build the default busybox image, run an isolated container
#   sudo make test    set everything up and run the whole test suite (this is what .ci/run calls)
PY      := .venv/bin/python
MC      := .venv/bin/minicontainer
IMAGE   := busybox

.PHONY: setup setup-test image demo test test-vm vm-shell bench clean
setup:
	@scripts/setup.sh

# Build the default userland with rootfs-builder and import it (skipped when already imported).
image: setup
	@$(MC) image inspect $(IMAGE) >/dev/null 2>&1 || $(MC) image build rootfs-builder/recipes/busybox.toml

demo: image
	@scripts/demo.sh

# What the tests need from the network is fetched here, before pytest: the test session runs
# in a network namespace of its own, without a route out. The Debian base tarball is cached
# by its recipe's hash, so only the first run downloads it.
export MINICONTAINER_BUILD_CACHE ?= /var/cache/minicontainer/build
setup-test:
	@scripts/setup.sh --test
	@$(PY) rootfs-builder/build.py rootfs-builder/recipes/debian.toml -o build/debian-bookworm.tar >/dev/null \
	    || echo "make: the Debian mirror cannot be reached: the Debian base test will be skipped" >&2

test: setup-test
	@$(PY) -m pytest -ra $(PYTEST_ARGS)

# Only the cgroup-v2 stage: a QEMU VM runs tests/test_cgroups.py, test_limits.py, … on pure v2.
test-vm: setup-test
	@$(PY) -m pytest -ra tests/test_vm_cgroup2.py $(PYTEST_ARGS)

# A root shell in that VM, in this checkout (Debian's modular kernel: lab 08's modprobe task);
# `exit` powers it off. With CMD='…' it runs that one command there instead (in bash, as written:
# make does not expand its $) and prints its output.
vm-shell:
	@$(PY) tests/vm/vmrunner.py $(if $(CMD),--sh '$(subst ','\'',$(value CMD))',--shell)

bench: image
	@bench/run.sh

clean:
	rm -rf .venv build
