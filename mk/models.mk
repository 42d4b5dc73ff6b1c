# Model weights: the fetch benchmark (loopback, 2 GiB; cleans up after itself).
BENCH_TARGETS += bench-fetch

.PHONY: bench-fetch

bench-fetch: $(STAMP) ## fetch vs curl, verify vs sha256sum, no-op re-run of the seven-file set
	$(PY) bench/fetch.py
