# coinfeed: every entry a user types. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
include versions.env

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.coinfeed-setup
KAFKA_MODE ?= zookeeper
KAFKA_SECURITY ?= plaintext
RUN_DIR ?= $(CURDIR)/run
export KAFKA_MODE KAFKA_SECURITY RUN_DIR

.PHONY: help setup kafka-up kafka-down kafka-status envtest tools test test-unit test-integration \
        lint fmt bench demo demo-down images kind-up kind-load deploy e2e kind-down clean \
        node-tools base-images cluster-up cluster-down cluster-status deploy-local

help: ## list every target with one line
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml versions.env scripts/setup.sh
	bash scripts/setup.sh

setup: ## create .venv, install every component + dev tools, fetch the pinned Kafka/Spark jars
	bash scripts/setup.sh

kafka-up: $(STAMP) ## start ZooKeeper (or KRaft with KAFKA_MODE=kraft) + brokers on :9092/9093/9094 (KAFKA_SECURITY=sasl_ssl: TLS+SCRAM+ACLs)
	$(PY) -m coinfeed kafka up --mode $(KAFKA_MODE) --security $(KAFKA_SECURITY) --run-dir $(RUN_DIR)/kafka

kafka-down: ## stop the local Kafka cluster started by kafka-up (safe to run twice)
	@if [ -x $(PY) ]; then $(PY) -m coinfeed kafka down --run-dir $(RUN_DIR)/kafka; else echo "nothing to stop"; fi

kafka-status: $(STAMP) ## show the local Kafka cluster's processes and brokers
	$(PY) -m coinfeed kafka status --run-dir $(RUN_DIR)/kafka

envtest: ## build (or locate) kube-apiserver + etcd for the test API server; prints KUBEBUILDER_ASSETS
	bash scripts/build-go-tools.sh envtest

tools: ## build the envtest binaries, helm, kind, the local node's programs and kube-linter (if served) from the Go module proxy into ~/.cache/coinfeed
	bash scripts/build-go-tools.sh all

test: $(STAMP) tools ## run unit + integration tests (starts real Kafka, kube-apiserver, Spark, Prometheus)
	$(PY) -m pytest -m "unit or integration" --durations=30 $(PYTEST_ARGS)

test-unit: $(STAMP) ## run only the unit tests (no services)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP) tools ## run only the integration tests
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, mypy, shellcheck, yamllint, helm lint, kube-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy coinfeed benchmarks localnode
	bash scripts/lint-static.sh

fmt: $(STAMP) ## format the Python code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP) ## run the benchmarks; each figure as a ratio to a baseline measured in the same run
	$(PY) -m benchmarks $(BENCH_ARGS)

demo: $(STAMP) ## run the whole pipeline locally on the shipped 48-hour sample and show the result
	$(PY) -m coinfeed demo run --run-dir $(RUN_DIR) $(DEMO_ARGS)

demo-down: ## stop everything `make demo` started
	@if [ -x $(PY) ]; then $(PY) -m coinfeed demo down --run-dir $(RUN_DIR); else echo "nothing to stop"; fi

images: ## build the producer, operator and spark images (starts a local dockerd if none answers)
	bash scripts/images.sh

base-images: ## build local base images from Debian (python, JRE, Kafka, ZooKeeper, ...): no registry needed
	bash scripts/base-images.sh all

node-tools: ## build kubelet, controller-manager, scheduler, kube-proxy and CoreDNS (Go module proxy)
	bash scripts/build-go-tools.sh node

cluster-up: $(STAMP) node-tools ## a single-node Kubernetes cluster on this machine (root); prints its kubeconfig
	bash scripts/base-images.sh node
	$(PY) -m localnode up

cluster-down: ## stop the local node, remove its pods, mounts, bridge, iptables chains; restore the host
	@if [ -x $(PY) ]; then $(PY) -m localnode down; else echo "nothing to stop"; fi
	bash scripts/docker-engine.sh stop

cluster-status: $(STAMP) ## the local node's processes, readiness and kubeconfig
	$(PY) -m localnode status

deploy-local: $(STAMP) ## build + load the images, install the umbrella chart into namespace coinfeed on the local node
	bash scripts/deploy-local.sh

kind-up: ## create the kind cluster (config: manifests/kind-config.yaml)
	bash scripts/kind.sh up

kind-load: ## load the images into the kind cluster
	bash scripts/kind.sh load

deploy: ## helm upgrade --install the umbrella chart into the kind cluster
	bash scripts/kind.sh deploy

e2e: ## apply coinfeed-btc.yaml on kind, wait for Ready, check topics, run the hourly job once
	bash scripts/kind.sh e2e

kind-down: ## delete the kind cluster
	bash scripts/kind.sh down

clean: demo-down kafka-down ## stop local services and remove run/ and out/
	rm -rf $(RUN_DIR) out
