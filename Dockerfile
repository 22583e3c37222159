# EvoSpikeNet on a CUDA machine: the library with every extra except the Python-3.10-only Loihi toolchain
# (make lava-venv builds that separately). The base image already carries a CUDA build of torch, so the
# CPU pin in constraints.txt is deliberately not used here.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    EVOSPIKENET_DATA_DIR=/data

WORKDIR /opt/evospikenet
COPY pyproject.toml README.md ./
COPY evospikenet ./evospikenet
COPY training ./training
COPY serving ./serving
COPY hub ./hub
COPY recipes ./recipes
RUN pip install -e ".[lm,train,serve,export]"

# Servers bind to 127.0.0.1 unless told otherwise; in a container pass --host 0.0.0.0 together with
# EVOSPIKENET_API_KEY, which any address other than loopback requires.
EXPOSE 8000
CMD ["evospikenet-train", "--help"]
