.PHONY: up demo test test-quick test-engines engines db db-stop db-status s3 s3-stop s3-status serve lint format bench bench-admin bench-simulate bench-cdc bench-lakehouse bench-s3 clean-db clean-s3

up:          ## the main job: venv, local PostgreSQL, migrate, seed (SCALE=small), admin login
	bin/up

demo:        ## the whole loop: seed, simulate, capture, apply to Delta and Iceberg, reconcile, query (S3=1: on the local S3 store)
	bin/demo

# Targets that run the project's Python need the .venv that `make up` makes.
venv = @test -x .venv/bin/python || { echo "error: run \`make up\` first (it makes .venv and the database)" >&2; exit 1; }

test:        ## the whole test suite against a throwaway PostgreSQL
	bin/test

test-quick:  ## the suite without the few slowest end-to-end tests (marked slow)
	bin/test -m "not slow"

test-engines: ## the tests that run Spark and Trino (marked engines; installs them first, once)
	bin/bootstrap && .venv/bin/python -m devstack.engines install
	TEST_WORKERS=0 bin/test -m engines

engines:     ## install pyspark, the Delta and Iceberg jars and Trino into .engines/ (about 1.5 GB)
	bin/bootstrap && .venv/bin/python -m devstack.engines install

db:          ## start the project-local PostgreSQL (no-op if running)
	bin/bootstrap && .venv/bin/python -m devstack.localdb start

db-stop:     ## stop it
	$(venv)
	.venv/bin/python -m devstack.localdb stop

db-status:   ## is it running, where, and where its data is (stopped is an answer, not a failure)
	$(venv)
	.venv/bin/python -m devstack.localdb status || [ $$? -eq 3 ]

s3:          ## start the project-local S3 store (SeaweedFS, bucket lakehouse; no-op if running)
	bin/bootstrap && .venv/bin/python -m devstack.locals3 start

s3-stop:     ## stop it
	$(venv)
	.venv/bin/python -m devstack.locals3 stop

s3-status:   ## is it running, where, and where its data is (stopped is an answer, not a failure)
	$(venv)
	.venv/bin/python -m devstack.locals3 status || [ $$? -eq 3 ]

serve:       ## the admin on http://127.0.0.1:8000/admin/ (once the database answers)
	$(venv)
	bin/serve

lint:        ## ruff lint and format check
	$(venv)
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:      ## ruff fix and format
	$(venv)
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

bench:       ## seeding benchmark, load and reseed per scale, on a throwaway server (SCALES="small medium large 5 10")
	bin/bootstrap && .venv/bin/python -m devstack.localdb run --ephemeral -- .venv/bin/python bench/seed_bench.py $(SCALES)

bench-admin: ## admin page times after a seed, every list filtered, searched and paged (SCALE=large)
	bin/bootstrap && .venv/bin/python -m devstack.localdb run --ephemeral -- .venv/bin/python bench/admin_bench.py --scale $(or $(SCALE),large)

bench-simulate: ## simulator throughput and latency for 1, 2, 4 workers (ACTIONS=20000 WORKERS="1 2 4")
	bin/bootstrap && .venv/bin/python -m devstack.localdb run --ephemeral -- .venv/bin/python bench/simulate_bench.py $(ACTIONS) --workers "$(or $(WORKERS),1 2 4)"

bench-cdc:   ## cdc_tail to disk and S3 against pg_recvlogical, and peak memory (SCALE=large, ACTIONS=20000)
	bin/bootstrap && .venv/bin/python -m devstack.localdb run --ephemeral -- .venv/bin/python bench/cdc_bench.py --scale $(or $(SCALE),large) --actions $(or $(ACTIONS),20000)

bench-lakehouse: ## full-load apply against a DuckDB rebuild, a 10,000-change batch and maintenance, Delta and Iceberg; Spark too at SPARK_SCALES="large 5" (SCALES="large 5 10"; S3=1 adds the local S3 store)
	bin/bootstrap && .venv/bin/python -m devstack.localdb run --ephemeral -- .venv/bin/python bench/lakehouse_bench.py --scales "$(or $(SCALES),large 5 10)" --spark-scales "$(if $(filter undefined,$(origin SPARK_SCALES)),large 5,$(SPARK_SCALES))" $(if $(S3),--s3) --deltalake "$(DELTALAKE)"

bench-s3:    ## the local S3 store's memory under a 100 MB object, and DuckDB reading Parquet on S3
	bin/bootstrap && .venv/bin/python bench/s3_bench.py

clean-db:    ## stop the local PostgreSQL and delete its data
	$(venv)
	.venv/bin/python -m devstack.localdb destroy

clean-s3:    ## stop the local S3 store and delete its data
	$(venv)
	.venv/bin/python -m devstack.locals3 destroy
