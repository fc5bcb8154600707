// Command wagate runs the gateway: it reads the configuration, opens the
// store, serves the API and shuts down gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/gateway"
	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			config.Usage(os.Stderr)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "wagate:", err)
		os.Exit(1)
	}
}

// run is the whole program, parameterised for tests.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) error {
	if len(args) > 0 && args[0] == "user" {
		return runUser(ctx, args[1:], getenv, os.Stdin, os.Stdout, logOut)
	}
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, logOut)
	if err := cfg.ResolveKeys(log); err != nil {
		return err
	}
	st, err := store.Open(ctx, store.OptionsFrom(cfg), log.With("component", "store"))
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	return gateway.New(cfg, st, log).Run(ctx, ln)
}

// runUser is `wagate user …`: console users, over the configured database
// (from the environment, as the server reads it).
func runUser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, out, logOut io.Writer) error {
	cfg, err := config.Load(nil, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, logOut)
	if err := cfg.ResolveKeys(log); err != nil {
		return err
	}
	st, err := store.Open(ctx, store.OptionsFrom(cfg), log.With("component", "store"))
	if err != nil {
		return err
	}
	defer st.Close()
	return console.UserCommand(ctx, st, args, getenv, stdin, out)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
