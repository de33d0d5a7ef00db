# The kfn image and the runtime images, for clusters that pull from a
# registry. (Without a Docker daemon, `make images` builds the same images
# with go-containerregistry.) From the repository root:
#
#   docker build -t registry.example.com/kfn:0.1.0 .
#   docker build --target runtime --build-arg RUNTIME=node-20 -t registry.example.com/kfn-node-20:0.1.0 .
#   docker build --target runtime --build-arg RUNTIME=python-3.11 -t registry.example.com/kfn-python-3.11:0.1.0 .

# RUNTIME is the runtime image that the target runtime builds: one of the
# stages below named as in internal/runtimes/runtimes.json.
ARG RUNTIME=node-20

# One static binary: `kfn manager`, `kfn apiserver`, and the in-pod runner.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /kfn .

# The runtimes: the language's official image and the wrapper, laid out as
# internal/runtimes/runtimes.json says. The target runtime adds the runner.
FROM node:20-bookworm-slim AS node-20
COPY internal/runtimes/node/kfn-node.mjs /opt/kfn/runtime/kfn-node.mjs
ENTRYPOINT ["/opt/kfn/bin/kfn", "run", "--", "node", "/opt/kfn/runtime/kfn-node.mjs"]
CMD ["index.js"]

FROM python:3.11-slim-bookworm AS python-3.11
# The root file system of a function pod is read-only: ship the standard
# library's bytecode (unchecked-hash: never checked against the sources, so
# never rewritten) instead of compiling it at every start.
RUN python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash /usr/local/lib/python3.11 || true
COPY internal/runtimes/python/kfn_python.py /opt/kfn/runtime/kfn_python.py
ENV PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["/opt/kfn/bin/kfn", "run", "--", "python3", "/opt/kfn/runtime/kfn_python.py"]
CMD ["main.py"]

# The RUNTIME image with the static kfn runner, so that a function pod needs
# no init container; the function's code is mounted at /kfn/code.
FROM ${RUNTIME} AS runtime
COPY --from=build /kfn /opt/kfn/bin/kfn
RUN mkdir -p /kfn/code /kfn/io && chown 65532:65532 /kfn/io
USER 65532:65532
WORKDIR /kfn/code
ENV HOME=/tmp

# The kfn image (the last stage: what `docker build .` builds).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kfn /kfn
USER 65532:65532
ENTRYPOINT ["/kfn"]
