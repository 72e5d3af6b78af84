# Two commands on a fresh clone:  make run   (set up, run the default preset)
#                                 make test  (set up, run the tests)
# The virtual environment is made with the first Python >= 3.12 found on this machine.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PRESET  ?= china_2025
EXTRAS  ?= dev,distributed,viz,calibrate,ema,docs

FIND_PYTHON = for p in "$$PYTHON" python3.13 python3.12 \
	  $$(ls -d "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV) \
	  /usr/bin/python3.13 /usr/bin/python3.12 python3; do \
	  [ -n "$$p" ] || continue; \
	  if "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo "$$p"; exit 0; fi; \
	done; echo "no Python >= 3.12 found; set PYTHON=/path/to/python3.12" >&2; exit 1

.PHONY: run test test-fast bench sweep dashboard clean setup docs snapshot mutate

setup: $(STAMP)

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || { py=$$($(FIND_PYTHON)) && echo "creating $(VENV) with $$py ($$($$py --version))" && $$py -m venv $(VENV); }
	@echo "installing aicloud-sim[$(EXTRAS)] into $(VENV) (log: $(VENV)/install.log)"
	@$(PY) -m pip install --upgrade pip > $(VENV)/install.log 2>&1 && \
	  $(PY) -m pip install -e ".[$(EXTRAS)]" >> $(VENV)/install.log 2>&1 || \
	  { tail -30 $(VENV)/install.log; echo "install failed; full log: $(VENV)/install.log" >&2; exit 1; }
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/aicloud run $(PRESET)

test: $(STAMP)
	$(PY) -m pytest -q

# The browser dashboard on http://127.0.0.1:$(DASHBOARD_PORT) (Ctrl-C stops it).
DASHBOARD_PORT ?= 8765
dashboard: $(STAMP)
	$(VENV)/bin/aicloud dashboard $(PRESET) --port $(DASHBOARD_PORT)

# The documentation site in site/ (mkdocs.yml; README, model, config reference, experiments,
# validation, performance, API reference, tutorial notebook). `$(VENV)/bin/mkdocs serve` previews it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d site

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

# Benchmarks, not part of make test (a few minutes): checks that the per-agent Mesa
# reference, the bare numpy kernels and the engine agree, measures them and the full model
# at 1k-1M customers, writes benchmarks/results/ and the README's Performance table,
# then profiles the full model.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	@$(PY) -m pip install -e ".[$(EXTRAS),bench]" >> $(VENV)/install.log 2>&1 || \
	  { tail -30 $(VENV)/install.log; echo "install failed; full log: $(VENV)/install.log" >&2; exit 1; }
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.profile_model

# The end state of the calibrated China history (2024Q4), from which china_2025 can start
# (run.start_from); a few seconds.
snapshot: $(STAMP)
	$(VENV)/bin/aicloud run configs/china_history_2020.toml --overlay docs/validation/fit/fitted.toml \
	  --customers 100000 --out runs/china_history_2020 --snapshot-out configs/snapshots/china_2024Q4.npz

# Mutation testing, not part of make test (docs/testing.md): mutmut mutates sim/submodels/,
# sim/metrics.py, sim/customers.py and sim/experiment/store.py and runs, for each mutant, the fast
# tests (pyproject.toml [tool.mutmut]) that reach the mutated function; then prints the score per
# module.  One worker by default (MUTATE_WORKERS=N for more); MUTANTS="sim.metrics.*" tests only
# the mutants matching that glob (the others show as not checked).  Results stay in mutants/.
MUTATE_STAMP   := $(VENV)/.mutate-installed
MUTATE_WORKERS ?= 1
MUTANTS        ?=
$(MUTATE_STAMP): $(STAMP)
	@$(PY) -m pip install -e ".[$(EXTRAS),mutate]" >> $(VENV)/install.log 2>&1 || \
	  { tail -30 $(VENV)/install.log; echo "install failed; full log: $(VENV)/install.log" >&2; exit 1; }
	@touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $(MUTATE_WORKERS) $(MUTANTS)
	$(PY) tests/mutation/score.py

clean:
	rm -rf $(VENV) runs site mutants .pytest_cache .hypothesis
