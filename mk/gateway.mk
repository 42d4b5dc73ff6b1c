# Gateway benchmark: throughput and streaming through `wanx gateway` vs direct (bench/gateway.py).
.PHONY: bench-gateway
BENCH_TARGETS += bench-gateway

bench-gateway: $(STAMP) ## gateway vs direct: small requests (wrk), 512 MiB /view, RSS growth
	$(PY) bench/gateway.py
