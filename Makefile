# minicontainer — the two commands of the README:
#   sudo make demo    set everything up, build the default busybox image, run an isolated container
#   sudo make test    set everything up and run the whole test suite (this is what .ci/run calls)
PY      := .venv/bin/python
MC      := .venv/bin/minicontainer
IMAGE   := busybox

.PHONY: setup image demo test test-vm bench clean
setup:
	@scripts/setup.sh

# Build the default userland with rootfs-builder and import it (skipped when already imported).
image: setup
	@$(MC) image inspect $(IMAGE) >/dev/null 2>&1 || $(MC) image build rootfs-builder/recipes/busybox.toml

demo: image
	@scripts/demo.sh

test: setup
	@$(PY) -m pytest -ra $(PYTEST_ARGS)

# Only the cgroup-v2 stage: a QEMU VM runs tests/test_cgroups.py, test_limits.py, … on pure v2.
test-vm: setup
	@$(PY) -m pytest -ra tests/test_vm_cgroup2.py $(PYTEST_ARGS)

bench: image
	@bench/run.sh

clean:
	rm -rf .venv build
