#!/usr/bin/env bash
# The long fuzzing run: tests/test_fuzz.py's properties with a large random budget (make test
# runs them with a small fixed one). Not a benchmark of speed — it lives here because it takes
# long and is run by hand or nightly, never by `make test`.
#   sudo bench/fuzz.sh                 # 5 000 random examples per property
#   sudo MC_FUZZ_EXAMPLES=50000 bench/fuzz.sh -k archives
# A failure prints hypothesis's smallest failing input; add it to the test as an @example.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=python3
cd "$here"
MC_FUZZ_EXAMPLES=${MC_FUZZ_EXAMPLES:-5000} MC_FUZZ_RANDOM=1 MC_SKIP_VM=1 \
    exec "$python" -m pytest -q -p no:cacheprovider tests/test_fuzz.py "$@"
