# Build: docker build -t wagate --build-arg VERSION=$(git describe --tags --always) .
# Run:   docker run -d -p 8080:8080 -v wagate-data:/data wagate

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/wagate/wagate.Version=${VERSION}" \
        -o /out/wagate ./cmd/wagate

FROM alpine:3.22
# ffmpeg converts voice notes to Ogg Opus and stickers to WebP.
RUN apk add --no-cache ca-certificates ffmpeg \
 && addgroup -S -g 10001 wagate \
 && adduser -S -D -H -u 10001 -G wagate wagate \
 && mkdir /data && chown wagate:wagate /data && chmod 700 /data
COPY --from=build /out/wagate /usr/local/bin/wagate
ENV WAGATE_DATA_DIR=/data \
    WAGATE_LISTEN=:8080
WORKDIR /data
VOLUME /data
USER wagate:wagate
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD wget -q -O /dev/null http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/wagate"]
