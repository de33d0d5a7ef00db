# The kfn image for clusters that pull from a registry. (Without a Docker
# daemon, `make images` builds the same image with go-containerregistry.)
# One static binary: `kfn manager`, `kfn apiserver`, and the in-pod runner.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /kfn .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kfn /kfn
USER 65532:65532
ENTRYPOINT ["/kfn"]
