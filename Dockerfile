# EvoSpikeNet in a container: the library with every extra except the Python-3.10-only Loihi toolchain (make
# lava-venv builds that separately). Installs exactly what `make install` does: torch from constraints.txt
# (torch 2.13.0; PyPI's Linux wheel carries its CUDA libraries, so the image runs on CPU and on NVIDIA GPUs)
# and every other package at its version in requirements.lock. torch >= 2.6 is required: older releases
# can run code from a crafted checkpoint even with weights_only=True.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CONSTRAINT=/opt/evospikenet/constraints.txt \
    GRADIO_ANALYTICS_ENABLED=False \
    EVOSPIKENET_DATA_DIR=/data

# A C++ compiler: the event-driven kernels are built by torch.utils.cpp_extension on first use.
RUN apt-get update && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/evospikenet
COPY pyproject.toml README.md constraints.txt requirements.lock ./
COPY evospikenet ./evospikenet
COPY training ./training
COPY serving ./serving
COPY hub ./hub
COPY recipes ./recipes
RUN pip install -c requirements.lock -e ".[lm,train,serve,export]" \
    && python -c "import torch; v = tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]); assert v >= (2, 6), torch.__version__"

RUN useradd --create-home --uid 10001 evospikenet
USER evospikenet

# Servers bind to 127.0.0.1 unless told otherwise. To reach one from outside the container, pass
# --host 0.0.0.0 with EVOSPIKENET_API_KEY (32 characters or more, or --generate-key) and the name clients
# use with --allowed-host, e.g.
#   docker run -p 8000:8000 -e EVOSPIKENET_API_KEY=... IMAGE evospikenet-serve --host 0.0.0.0 --allowed-host myhost.example.org
EXPOSE 8000
CMD ["evospikenet-serve", "--help"]
