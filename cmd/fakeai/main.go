// Command fakeai serves the in-repo fake OpenAI API for local demos and
// benchmarks: point a wagate credential's baseUrl at the URL it logs.
//
//	go run ./cmd/fakeai -addr 127.0.0.1:8090 -latency 300ms
//	go run ./cmd/fakeai -addr 127.0.0.1:8090 -rpm 600   # OpenAI-style rate limit per key
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wagate/wagate/fakeai"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "fakeai:", err)
		os.Exit(1)
	}
}

// run is the whole program, parameterised for tests.
func run(ctx context.Context, args []string, logOut io.Writer) error {
	fs := flag.NewFlagSet("fakeai", flag.ContinueOnError)
	fs.SetOutput(logOut)
	addr := fs.String("addr", ":8090", "listen address")
	latency := fs.Duration("latency", 0, "latency added to every model call, e.g. 300ms")
	prefix := fs.String("prefix", fakeai.DefaultPrefix, "prefix of echo replies")
	rpm := fs.Int("rpm", 0, "requests per minute allowed per API key, with OpenAI's x-ratelimit headers and 429s past it; 0 means no limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))

	srv := fakeai.New(fakeai.Options{
		Prefix:            *prefix,
		Latency:           *latency,
		RequestsPerMinute: *rpm,
		// Nobody can read the records of a standalone server; keeping them
		// would only grow memory during benchmarks.
		MaxRecorded: -1,
		Logger:      log,
	})
	base, err := srv.Start(*addr)
	if err != nil {
		return err
	}
	log.Info("fakeai listening", "base_url", base, "latency", *latency, "rpm", *rpm)

	<-ctx.Done()
	log.Info("fakeai shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
