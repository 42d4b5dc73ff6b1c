# Durable jobs (issue #7): the recovery benchmark.
.PHONY: bench-jobs
BENCH_TARGETS += bench-jobs

bench-jobs: $(STAMP) ## time from a restarted backend answering to its lost job being resubmitted
	$(PY) bench/jobs_recovery.py --rounds 5 --poll 0.5
