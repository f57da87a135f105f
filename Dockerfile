# The voicegraph service image; with `--target planner-cpu`, llama.cpp's OpenAI-compatible
# server on the same packaged GGUF, for replicas that share one planner (VOICEGRAPH_PLANNER=openai).
#
#   docker build -t voicegraph .
#   docker build --target planner-cpu -t voicegraph-planner-cpu .
# podman builds it the same; `podman build --format docker` keeps the HEALTHCHECKs (OCI images have none).
#
# BASE is any Debian 12 (bookworm) root filesystem. Where no base image can be pulled,
# deploy/base-image.sh makes one from Debian's packages and passes it as BASE.
ARG BASE=docker.io/library/debian:bookworm-slim

# ---- build: the project's own set-up (deploy/bootstrap.sh) and the models, prepared once ----
FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# llama.cpp for any x86-64 with AVX2, not only for the CPU of the machine that builds the image.
ARG CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# pip and uv trust Debian's store, so a proxy's CA added to it (update-ca-certificates) works too.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /opt/voicegraph
COPY pyproject.toml README.md ./
COPY deploy/bootstrap.sh deploy/
COPY agent/ agent/
COPY api/ api/
COPY model/ model/
COPY retrieval/ retrieval/
COPY tools/ tools/
# The planner model is assembled and verified here, into the image, not at start-up.
ENV VOICEGRAPH_MODEL_DIR=/opt/voicegraph/share
RUN CMAKE_ARGS="$CMAKE_ARGS" bash deploy/bootstrap.sh \
 && rm -rf /root/.cache /var/lib/apt/lists/*

# ---- planner-build: llama-server from the llama.cpp sources the service's engine is built from ----
FROM build AS planner-build
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN version="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')" \
 && .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d /tmp/src "llama-cpp-python==$version" \
 && tar -xzf /tmp/src/llama_cpp_python-*.tar.gz -C /tmp/src \
 && cmake -S /tmp/src/llama_cpp_python-*/vendor/llama.cpp -B /tmp/llama $CMAKE_ARGS \
      -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
 && cmake --build /tmp/llama --target llama-server -j"$(nproc)" \
 && install -m 0755 /tmp/llama/bin/llama-server /usr/local/bin/llama-server \
 && rm -rf /tmp/src /tmp/llama /root/.cache

# ---- runtime: what running needs, and nothing that building did ----
FROM ${BASE} AS runtime-base
ARG DEBIAN_FRONTEND=noninteractive
# python3: the virtualenv's interpreter; libgomp1: llama.cpp's threads; espeak-ng: the espeak voices.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 libgomp1 espeak-ng ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 voicegraph \
 && useradd --system --uid 10001 --gid voicegraph --home-dir /var/lib/voicegraph --create-home \
      --shell /usr/sbin/nologin voicegraph

FROM runtime-base AS planner-cpu
COPY --from=planner-build /usr/local/bin/llama-server /usr/local/bin/llama-server
COPY --from=build /opt/voicegraph/share/models/ /models/
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status != 200)"]
# --jinja: the model's own chat template, and tool calls parsed by the server.
ENTRYPOINT ["llama-server", "--model", "/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", \
            "--alias", "qwen2.5-coder-1.5b-instruct", "--host", "0.0.0.0", "--port", "8080", "--jinja"]
CMD ["--ctx-size", "32768", "--parallel", "4"]

FROM runtime-base AS runtime
COPY --from=build /opt/voicegraph/ /opt/voicegraph/
ENV PATH=/opt/voicegraph/.venv/bin:$PATH \
    HOME=/var/lib/voicegraph \
    PYTHONUNBUFFERED=1 \
    VOICEGRAPH_DATA_DIR=/var/lib/voicegraph \
    VOICEGRAPH_MODEL_DIR=/opt/voicegraph/share \
    VOICEGRAPH_HOST=0.0.0.0 \
    VOICEGRAPH_PORT=8000
USER 10001:10001
WORKDIR /var/lib/voicegraph
VOLUME /var/lib/voicegraph
EXPOSE 8000
# Loopback: without API keys the service answers only to a loopback Host, and this is one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ.get('VOICEGRAPH_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
CMD ["voicegraph", "serve"]
