# idsync: one static binary (no cgo: SQLite is modernc.org/sqlite).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /idsync ./cmd/idsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /idsync /idsync
EXPOSE 8080
ENTRYPOINT ["/idsync"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
