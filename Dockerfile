# wxscan: one static binary on a small base image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/wxscan ./cmd/wxscan && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wxscan /usr/local/bin/wxscan
# Owned by the nonroot user, so that a named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV WXSCAN_ADDR=:8080 WXSCAN_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/wxscan"]
CMD ["serve"]
