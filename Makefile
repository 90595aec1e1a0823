# Every target is one line a newcomer can read. Python 3.11+ and make are all you need to start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DJANGO_SETTINGS_MODULE := platform_site.settings

.PHONY: install tools images cluster run demo worker test test-fast lint fmt migrate bench clean

# Create the virtualenv and install pinned dependencies (re-runs only when requirements change).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Pinned, checksum-verified helm3, helm4 and kubectl into .tools/bin; the real cluster's binaries
# (kube-apiserver, etcd, kwok, ...) into .tools/cluster, the real node's (containerd, CoreDNS,
# Traefik) into .tools/node, its NetworkPolicy engine and probe into .tools/netpol, and cert-manager's
# CRDs and controller (deploy/cert-manager) into .tools/cert-manager, and the backup tests' S3 server
# (SeaweedFS, deploy/objectstore) into .tools/objectstore, built from Go modules (cached outside the
# clone; skipped without Go).
tools:
	bash deploy/tools/install-helm.sh
	bash deploy/cluster/build.sh
	bash deploy/node/build.sh
	bash deploy/netpol/build.sh
	bash deploy/tools/fetch-cert-manager-crds.sh
	bash deploy/cert-manager/build.sh
	bash deploy/objectstore/build.sh

# The container images the real node runs (debootstrap + buildah, no registry; cached outside the
# clone). Needs root, so it is not part of tools: run it once as root before the real-node tests.
images:
	bash deploy/images/build.sh

# A real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes) in the foreground.
# NODE=real (as root, after `make images`): a real node runs the containers too, with Traefik on port 80.
cluster: install tools
	$(BIN)/python -m localcluster $(if $(filter real,$(NODE)),--real-node)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The platform on embedded defaults (SQLite, filesystem broker): web + worker + beat at http://127.0.0.1:8000
run: migrate
	$(BIN)/python manage.py ensure_local_admin
	bash deploy/run-local.sh

# Like run, but against the Kubernetes API test double started in the background (a simulated cluster).
demo: install tools
	bash deploy/run-demo.sh

# A Celery worker alone (with beat), for running web and worker in separate terminals.
worker: migrate
	$(BIN)/celery -A platform_site worker --beat --loglevel INFO

# The whole test suite. SQLite + filesystem broker by default; set DATABASE_URL / CELERY_BROKER_URL for PostgreSQL + Redis.
# PYTEST_ARGS narrows it, e.g. PYTEST_ARGS='-m real_cluster' for the real control-plane layer alone.
test: install tools
	BROKER_DATA_DIR=$(CURDIR)/var/test-broker-$$$$ $(BIN)/pytest $(PYTEST_ARGS)

# The quick loop while coding: no browser, no Medusa install, no worker processes, no real cluster (under 2 min).
test-fast: install tools
	BROKER_DATA_DIR=$(CURDIR)/var/test-broker-$$$$ $(BIN)/pytest -m "not slow and not browser and not real_cluster and not real_node and not netpol" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy platform_site stores provisioning
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks (not tests): print figures against PostgreSQL and Redis.
bench: install tools
	$(BIN)/python -m bench

clean:
	rm -rf var/broker var/helm var/test-platform-*.sqlite3* var/test-broker-*
